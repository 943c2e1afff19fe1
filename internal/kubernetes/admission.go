package kubernetes

import (
	"fmt"
	"strconv"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
)

// crossTenantRules are the admission policy's rules against objects that reach past their namespace on
// a real cluster: a Service that names another host or claims an address, an Ingress that claims
// another tenant's host or configures the controller itself, finalizers in pod and claim templates
// (the pods and claims made from them would keep the namespace, and so the uninstall, from finishing),
// and grace periods that keep a deleted deployment's pods running.
func (p *Provider) crossTenantRules() []admissionv1.Validation {
	notDelete := `request.operation == "DELETE" || `
	kindIs := func(kinds ...string) string {
		return `request.kind.kind in ["` + strings.Join(kinds, `", "`) + `"]`
	}
	// The pod spec and pod template metadata of every kind that makes pods.
	templated := kindIs("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job")
	ownFinalizer := `!(f.startsWith("kubernetes.io/") || f.startsWith("batch.kubernetes.io/") || f == "foregroundDeletion" || f == "orphan")`
	maxGrace := strconv.FormatInt(p.cfg.MaxGracePeriod, 10)
	graceOK := func(spec string) string {
		return spec + `.?terminationGracePeriodSeconds.orValue(0) <= ` + maxGrace
	}
	rules := []admissionv1.Validation{
		{Expression: notDelete + `request.kind.kind != "Service" || object.?spec.?type.orValue("") != "ExternalName"`,
			Message: "a marketplace deployment may not create a Service of type ExternalName (it would send the cluster's traffic for that name anywhere)"},
		{Expression: notDelete + `request.kind.kind != "Service" || object.?spec.?loadBalancerIP.orValue("") == ""`,
			Message: "a marketplace deployment may not choose a load balancer's address (spec.loadBalancerIP): it could claim another tenant's"},
		{Expression: notDelete + `request.kind.kind != "Service" || !object.?metadata.?annotations.orValue({}).exists(k, ["loadbalancerip", "load-balancer-ip", "lb-ipam-ips", "address-pool", "loadbalancer-ip"].exists(w, k.lowerAscii().contains(w)))`,
			Message: "a marketplace deployment may not choose a load balancer's address through annotations: it could claim another tenant's"},
		{Expression: notDelete + `!(` + templated + `) || (!object.?spec.?template.?metadata.?finalizers.orValue([]).exists(f, ` + ownFinalizer + `) && !object.?spec.?volumeClaimTemplates.orValue([]).exists(v, v.?metadata.?finalizers.orValue([]).exists(f, ` + ownFinalizer + `)))`,
			Message: "a marketplace deployment may not put finalizers of its own in pod or volume claim templates (they would keep its namespace from being deleted)"},
		{Expression: notDelete + `request.kind.kind != "CronJob" || !object.?spec.?jobTemplate.?spec.?template.?metadata.?finalizers.orValue([]).exists(f, ` + ownFinalizer + `)`,
			Message: "a marketplace deployment may not put finalizers of its own in pod templates (they would keep its namespace from being deleted)"},
		{Expression: notDelete + `(request.kind.kind != "Pod" || ` + graceOK("object.?spec") + `) && (!(` + templated + `) || ` + graceOK("object.?spec.?template.?spec") + `) && (request.kind.kind != "CronJob" || ` + graceOK("object.?spec.?jobTemplate.?spec.?template.?spec") + `)`,
			Message: fmt.Sprintf("a marketplace deployment's pods may take at most %s seconds to stop (terminationGracePeriodSeconds, K8S_MAX_GRACE_PERIOD)", maxGrace)},
	}
	// ingress-nginx runs snippet annotations as its own configuration (CVE-2021-25742); other annotations
	// of a controller are its configuration too: only the allowed ones, and Helm's.
	allowed := []string{`k.startsWith("meta.helm.sh/")`, `k == "kubectl.kubernetes.io/last-applied-configuration"`}
	for _, a := range p.cfg.IngressAnnotations {
		allowed = append(allowed, `k == `+strconv.Quote(a))
	}
	rules = append(rules, admissionv1.Validation{
		Expression: notDelete + `request.kind.kind != "Ingress" || object.?metadata.?annotations.orValue({}).all(k, ` + strings.Join(allowed, " || ") + `)`,
		Message:    "a marketplace deployment may set only these annotations on an Ingress: " + strings.Join(append([]string{"meta.helm.sh/*"}, p.cfg.IngressAnnotations...), ", ")})
	if p.cfg.IngressDomain == "" {
		return append(rules, admissionv1.Validation{Expression: notDelete + `request.kind.kind != "Ingress"`,
			Message: "this marketplace lets no deployment create an Ingress (no K8S_INGRESS_DOMAIN is configured)"})
	}
	domain := strconv.Quote("." + strings.TrimPrefix(p.cfg.IngressDomain, "."))
	own := func(h string) string {
		return `(` + h + ` == request.namespace + ` + domain + ` || ` + h + `.endsWith("." + request.namespace + ` + domain + `))`
	}
	return append(rules, admissionv1.Validation{
		Expression: notDelete + `request.kind.kind != "Ingress" || (!has(object.spec.defaultBackend) && object.?spec.?rules.orValue([]).all(r, has(r.host) && ` + own("r.host") + `) && object.?spec.?tls.orValue([]).all(t, t.?hosts.orValue([]).all(h, ` + own("h") + `)))`,
		Message:    "an Ingress of a marketplace deployment may claim only hosts under its own domain <namespace>" + strings.Trim(domain, `"`) + " (every rule names a host; no default backend)"})
}
