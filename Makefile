# The targets a newcomer guesses. `make run` and `make test` are all a new machine needs.
SHELL := /bin/bash
# kustomize_disable_go_plugin_support: Helm links kustomize, whose Go-plugin loader imports package plugin,
# which makes the linker keep and export every symbol; nothing here loads Go plugins (bench/README.md, "Memory").
export GOFLAGS := -buildvcs=false -tags=kustomize_disable_go_plugin_support
KUBECONFIG_LOCAL := $(CURDIR)/.local/cluster/kubeconfig

.PHONY: run test cluster cluster-down registry hydra services vmhost vmhost-down browser build image bench clean

run: ## everything on local defaults: PostgreSQL, Redis, the local cluster, the chart repository, serve
	bash scripts/run.sh

test: services cluster registry hydra vmhost browser ## every test, against real PostgreSQL, Redis, the local cluster, an OCI registry, an OpenID provider and the local VM host
	KUBECONFIG=$(KUBECONFIG_LOCAL) go test -count=1 -timeout 60m $$(go list ./... | grep -v /bench)
	@# The benchmarks' smoke runs load both cores on purpose (wrk): after the other tests, whose leases are seconds long.
	KUBECONFIG=$(KUBECONFIG_LOCAL) go test -count=1 -timeout 20m ./bench/...

services: ## start PostgreSQL and Redis when they are not running
	bash scripts/services.sh

cluster: ## build (once, cached in ~/.cache/marketplace) and start the local Kubernetes control plane
	bash scripts/cluster.sh up

registry: ## build (once, cached) the OCI registry the tests push charts to
	bash scripts/registry.sh

hydra: ## build (once, cached) Ory Hydra, the OpenID provider of the single sign-on tests
	bash scripts/hydra.sh

vmhost: ## install (apt) and start libvirt + QEMU in a network namespace of their own, build the test guest image
	bash scripts/vmhost.sh up

browser: ## Debian's Chromium and axe-core (cached) for the storefront's browser tests
	bash scripts/chromium.sh
	bash scripts/axe.sh

vmhost-down:
	bash scripts/vmhost.sh down

cluster-down:
	bash scripts/cluster.sh down

build: ## .local/bin: marketplace (every role), marketplace-api (-tags apionly: the api role without Helm, client-go or libvirt), mpctl
	go build -o .local/bin/marketplace ./cmd/marketplace
	go build -tags apionly -o .local/bin/marketplace-api ./cmd/marketplace
	go build -o .local/bin/mpctl ./cmd/mpctl

image: ## the OCI image without Docker (cmd/mkimage): .local/marketplace-image.tar, or pushed to IMAGE=registry/repository:tag (PLAIN_HTTP=1 for a registry without TLS)
	CGO_ENABLED=0 go build -trimpath -o .local/bin/marketplace-static ./cmd/marketplace
	go run ./cmd/mkimage -binary .local/bin/marketplace-static $(if $(IMAGE),-push $(IMAGE),-o .local/marketplace-image.tar) $(if $(PLAIN_HTTP),-plain-http)

bench: services cluster ## the benchmarks of bench/README.md
	bash bench/run.sh

clean: cluster-down vmhost-down
	rm -rf .local
