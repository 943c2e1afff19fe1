package main

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"helm.sh/helm/v4/pkg/action"
	common "helm.sh/helm/v4/pkg/chart/common"
	commonutil "helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	helmkube "helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/registry"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/marketplace/marketplace/internal/ociimage"
	"github.com/marketplace/marketplace/internal/testenv"
)

// TestHelmChart builds the marketplace's image without Docker, pushes it and the chart of deploy/chart
// to the local OCI registry, installs the chart from the registry with the Helm SDK into a fresh
// namespace of the local cluster, and checks what a cluster operator would: the Deployments (image by
// digest, probes, resources, non-root), the settings Secret (which the program reads as its
// configuration), the migration Job, the PodDisruptionBudgets and the RBAC. kwok runs no containers,
// so the RBAC is proven by running the marketplace (the image's binary) with the chart's own
// kubeconfig and its service account's token: it installs and removes an application through it.
// Values the schema refuses never render; the uninstall removes every object.
func TestHelmChart(t *testing.T) {
	ctx := context.Background()
	cs := kube(t)
	registryHost := strings.TrimSuffix(strings.TrimPrefix(tenv.OCIRepo, "oci://"), "/charts")

	// The image: the static binary alone, pushed without credentials, read back from the registry.
	bin := staticMarketplace(t)
	img, err := ociimage.Build(ociimage.Config{Binary: bin, CACerts: "/etc/ssl/certs/ca-certificates.crt",
		Labels: map[string]string{"org.opencontainers.image.title": "marketplace"}})
	if err != nil {
		t.Fatal(err)
	}
	imageRef, err := ociimage.Push(ctx, img, registryHost+"/marketplace/marketplace:test", true)
	if err != nil {
		t.Fatal(err)
	}
	repository, digest, _ := strings.Cut(imageRef, "@")
	checkImage(t, imageRef, bin)

	// The chart, packaged and pushed, then pulled back from the registry as an operator's Helm would.
	rc, err := registry.NewClient(registry.ClientOptPlainHTTP())
	if err != nil {
		t.Fatal(err)
	}
	src, err := loader.LoadDir(filepath.Join(tenv.Root, "deploy", "chart"))
	if err != nil {
		t.Fatal(err)
	}
	tgz, err := chartutil.Save(src, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	chartRef := fmt.Sprintf("%s/charts/marketplace:%s", registryHost, src.Metadata.Version)
	if _, err := rc.Push(data, chartRef); err != nil {
		t.Fatalf("push the chart: %v", err)
	}
	pulled, err := rc.Pull(chartRef)
	if err != nil {
		t.Fatalf("pull the chart: %v", err)
	}
	ch, err := loader.LoadArchive(strings.NewReader(string(pulled.Chart.Data)))
	if err != nil {
		t.Fatal(err)
	}

	// Bad values never render: the schema names what is wrong.
	for _, bad := range []struct {
		what   string
		values string
		says   string
	}{
		{"no database", `{redis: {url: "redis://r:6379/0"}}`, "postgresql"},
		{"a misspelt setting", `{config: {BILLING_INTERVALL: 1s}}`, "BILLING_INTERVALL"},
		{"a setting the chart sets itself", `{config: {DATABASE_URL: "postgres://x/y"}}`, "DATABASE_URL"},
		{"not a duration", `{config: {BILLING_INTERVAL: "every minute"}}`, "BILLING_INTERVAL"},
		{"negative replicas", `{api: {replicas: -1}}`, "replicas"},
		{"a digest that is not one", `{image: {digest: "md5:0123"}}`, "digest"},
		{"no resource requests", `{worker: {resources: {requests: null}}}`, "requests"},
		{"a namespace prefix Kubernetes refuses", `{config: {K8S_NAMESPACE_PREFIX: "Team_A"}}`, "K8S_NAMESPACE_PREFIX"},
	} {
		values := mergeValues(t, `{postgresql: {url: "postgres://db:5432/marketplace"}, redis: {url: "redis://r:6379/0"}}`, bad.values)
		if bad.what == "no database" {
			values = mergeValues(t, bad.values)
		}
		_, err := renderChart(ch, "mp", "default", values)
		if err == nil || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("%s: rendered (err %v), want it refused naming %s", bad.what, err, bad.says)
		}
	}

	// Install into a namespace of its own, Redis's URL from a Secret the operator made beforehand.
	ns := testenv.Name("mp-chart-")
	prefix := testenv.Name("t")
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		cleanupNamespaces(t, prefix)
		cs.RbacV1().ClusterRoles().Delete(context.Background(), prefix+"-deployer", metav1.DeleteOptions{})
		cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(context.Background(), prefix+"-deployments", metav1.DeleteOptions{})
		cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(context.Background(), prefix+"-deployments", metav1.DeleteOptions{})
	})
	databaseURL, redisURL := tenv.Database(t), tenv.RedisURL(t)
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "redis-conn"},
		StringData: map[string]string{"url": redisURL}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	adminToken := "operator-" + testenv.Name("")
	// As an operator's values file: YAML numbers and booleans, a big one among them.
	values := mergeValues(t, fmt.Sprintf(`
image: {repository: %q, digest: %q}
postgresql: {url: %q}
redis: {existingSecret: {name: redis-conn, key: url}}
adminToken: %q
config:
  K8S_NAMESPACE_PREFIX: %s
  BILLING_INTERVAL: 1s
  RECONCILE_INTERVAL: 500ms
  DEPLOY_RETRY_BACKOFF: 500ms
  DEPLOY_MAX_ATTEMPTS: 2
  METRICS_PUBLIC: true
  USER_CREATE_RATE: 0
  VM_IMAGE_QUOTA_BYTES: 21474836480
  MARKETPLACE_FETCH_ALLOW: %q
  LOG_LEVEL: info
api: {replicas: 2}
worker: {replicas: 3}
`, repository, digest, databaseURL, adminToken, prefix, testRepositories()))
	cfg := helmConfig(t, ns)
	inst := action.NewInstall(cfg)
	inst.ReleaseName, inst.Namespace = "mp", ns
	inst.WaitStrategy = helmkube.HookOnlyStrategy // kwok runs no containers: nothing would become ready
	if _, err := inst.RunWithContext(ctx, ch, values); err != nil {
		t.Fatalf("helm install: %v", err)
	}

	// The settings Secret, and what the program makes of it.
	settings, err := cs.CoreV1().Secrets(ns).Get(ctx, "mp-marketplace-settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	environ := map[string]string{}
	for k, v := range settings.Data {
		environ[k] = string(v)
	}
	for k, want := range map[string]string{"DATABASE_URL": databaseURL, "MARKETPLACE_ADMIN_TOKEN": adminToken, "K8S_NAMESPACE_PREFIX": prefix,
		"DEPLOY_MAX_ATTEMPTS": "2", "METRICS_PUBLIC": "true", "USER_CREATE_RATE": "0", "BILLING_INTERVAL": "1s", "VM_IMAGE_QUOTA_BYTES": "21474836480"} {
		if environ[k] != want {
			t.Errorf("settings Secret: %s = %q, want %q", k, environ[k], want)
		}
	}
	if _, ok := environ["REDIS_URL"]; ok {
		t.Errorf("settings Secret holds REDIS_URL: it comes from the operator's Secret")
	}
	parsed, err := loadConfig(func(k string) string { return environ[k] })
	if err != nil {
		t.Fatalf("the settings Secret is not a configuration the marketplace takes: %v", err)
	}
	if parsed.NamespacePrefix != prefix || parsed.MaxAttempts != 2 || !parsed.MetricsPublic || parsed.BillingInterval != time.Second {
		t.Errorf("configuration from the settings Secret: prefix %q, attempts %d, metrics public %v, billing every %v",
			parsed.NamespacePrefix, parsed.MaxAttempts, parsed.MetricsPublic, parsed.BillingInterval)
	}

	// The two Deployments.
	for _, c := range []struct {
		name, role, account string
		replicas            int32
		token               bool
	}{{"mp-marketplace-api", "api", "mp-marketplace-api", 2, false}, {"mp-marketplace-worker", "worker", "mp-marketplace", 3, true}} {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, c.name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("Deployment %s: %v", c.name, err)
		}
		checkDeployment(t, d, c.role, imageRef, c.replicas)
		pod := d.Spec.Template.Spec
		if pod.ServiceAccountName != c.account || pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken != c.token {
			t.Errorf("%s: service account %s (token mounted: %v), want %s (%v)", c.name, pod.ServiceAccountName, deref(pod.AutomountServiceAccountToken), c.account, c.token)
		}
		pdb, err := cs.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, c.name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("PodDisruptionBudget %s: %v", c.name, err)
		}
		if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || !selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("PodDisruptionBudget %s: %+v, want at most 1 unavailable of the Deployment's pods", c.name, pdb.Spec)
		}
	}
	svc, err := cs.CoreV1().Services(ns).Get(ctx, "mp-marketplace", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Service: %v", err)
	}
	if svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort.String() != "http" || svc.Spec.Selector["app.kubernetes.io/component"] != "api" {
		t.Errorf("Service: %+v, want port 80 to the API pods' http", svc.Spec)
	}
	job, err := cs.BatchV1().Jobs(ns).Get(ctx, "mp-marketplace-migrate-1", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("migration Job: %v", err)
	}
	if c := job.Spec.Template.Spec.Containers[0]; !slices.Equal(c.Args, []string{"migrate"}) || c.Image != imageRef || c.EnvFrom[0].SecretRef.Name != settings.Name {
		t.Errorf("migration Job runs %v of %s with %+v, want migrate of %s with the settings Secret", c.Args, c.Image, c.EnvFrom, imageRef)
	}

	// RBAC: the ClusterRole is bound to the workers' account, and is all the marketplace needs. A serve
	// process with the workers' kubeconfig (the chart's, pointed at this cluster) and their account's
	// token installs an application, reads its health and removes it.
	roleName := ns + "-mp-marketplace"
	role, err := cs.RbacV1().ClusterRoles().Get(ctx, roleName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ClusterRole: %v", err)
	}
	t.Cleanup(func() { cs.RbacV1().ClusterRoles().Delete(context.Background(), roleName, metav1.DeleteOptions{}) })
	for _, r := range role.Rules {
		if slices.Contains(r.Verbs, "*") || slices.Contains(r.Resources, "*") {
			t.Errorf("ClusterRole rule %+v grants everything", r)
		}
		if slices.Contains(r.Verbs, "bind") && !slices.Equal(r.ResourceNames, []string{prefix + "-deployer"}) {
			t.Errorf("ClusterRole rule %+v may bind more than the deployer role", r)
		}
	}
	binding, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, roleName, metav1.GetOptions{})
	if err != nil || binding.RoleRef.Name != roleName || len(binding.Subjects) != 1 || binding.Subjects[0].Name != "mp-marketplace" || binding.Subjects[0].Namespace != ns {
		t.Fatalf("ClusterRoleBinding: %v %+v", err, binding)
	}
	kubeconfig := workerKubeconfig(t, ns)
	environ["REDIS_URL"] = redisURL
	environ["KUBECONFIG"] = kubeconfig
	environ["HOME"] = t.TempDir()
	mp := startProcess(t, bin, "serve", environ)
	// The worker role answers the chart's readiness probe too.
	worker := startProcess(t, bin, "worker", environ)
	if r := worker.call(t, "GET", "/readyz", "", nil); r.Status != 200 || !strings.Contains(string(r.Body), `"postgres":"ok"`) || !strings.Contains(string(r.Body), `"redis":"ok"`) {
		t.Errorf("a worker's /readyz: %d %s, want 200 with PostgreSQL and Redis ok", r.Status, r.Body)
	}
	_, pubTok := mp.user(t, "publisher")
	_, conTok := mp.user(t, "consumer")
	mp.must(t, 201, "POST", "/api/apps/new", pubTok, map[string]any{"name": "hello, no pods", "hourly_rate": 0.5,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"},
		"inputs":     []map[string]any{{"name": "replicaCount", "type": "integer", "default": 0}}})
	mp.must(t, 201, "POST", "/api/user/project/new", conTok, map[string]any{"name": "p"})
	mp.must(t, 202, "POST", "/api/deployments/install", conTok, map[string]any{"application_id": 1, "project_id": 1})
	installed := mp.waitForStatus(t, conTok, 1, "installed", 2*time.Minute)
	depNS := installed["placement"].(map[string]any)["namespace"].(string)
	if !strings.HasPrefix(depNS, prefix+"-") {
		t.Fatalf("deployment namespace %s, want one of prefix %s", depNS, prefix)
	}
	if _, err := cs.CoreV1().ResourceQuotas(depNS).Get(ctx, "marketplace-quota", metav1.GetOptions{}); err != nil {
		t.Errorf("the deployment's ResourceQuota, made as the chart's service account: %v", err)
	}
	// Health lists the workloads and the release record; on a loaded machine the first read may take
	// longer than its 500 ms, so it is read until it answers (a refusal by RBAC never would).
	var health any
	waitFor(t, 30*time.Second, "the deployment's health, read as the chart's service account", func() bool {
		health = mp.must(t, 200, "GET", "/api/deployments/1", conTok, nil).JSON(t)["health"]
		h, _ := health.(map[string]any)
		return h != nil && h["status"] != "unknown"
	})
	mp.must(t, 202, "DELETE", "/api/deployments/1", conTok, nil)
	mp.waitForStatus(t, conTok, 1, "uninstalled", 2*time.Minute)
	if n, err := cs.CoreV1().Namespaces().Get(ctx, depNS, metav1.GetOptions{}); err == nil && n.DeletionTimestamp == nil {
		t.Errorf("namespace %s is not being deleted after the uninstall", depNS)
	}

	// Uninstall: every object of the release goes, the cluster-wide ones too.
	uninstall := action.NewUninstall(helmConfig(t, ns))
	uninstall.WaitStrategy = helmkube.HookOnlyStrategy
	if _, err := uninstall.Run("mp"); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	gone := map[string]func() error{
		"Deployment api": func() error {
			_, err := cs.AppsV1().Deployments(ns).Get(ctx, "mp-marketplace-api", metav1.GetOptions{})
			return err
		},
		"Deployment worker": func() error {
			_, err := cs.AppsV1().Deployments(ns).Get(ctx, "mp-marketplace-worker", metav1.GetOptions{})
			return err
		},
		"settings Secret": func() error {
			_, err := cs.CoreV1().Secrets(ns).Get(ctx, settings.Name, metav1.GetOptions{})
			return err
		},
		"migration Job": func() error { _, err := cs.BatchV1().Jobs(ns).Get(ctx, job.Name, metav1.GetOptions{}); return err },
		"PDB api": func() error {
			_, err := cs.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "mp-marketplace-api", metav1.GetOptions{})
			return err
		},
		"ClusterRole": func() error { _, err := cs.RbacV1().ClusterRoles().Get(ctx, roleName, metav1.GetOptions{}); return err },
		"ClusterRoleBinding": func() error {
			_, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, roleName, metav1.GetOptions{})
			return err
		},
		"ServiceAccount": func() error {
			_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "mp-marketplace", metav1.GetOptions{})
			return err
		},
	}
	for what, get := range gone {
		waitFor(t, 30*time.Second, what+" to be deleted", func() bool { return apierrors.IsNotFound(get()) })
	}
	if left := helmReleases(t, ns, "mp"); len(left) != 0 {
		t.Errorf("%d Helm release records left after the uninstall", len(left))
	}
}

// TestChartExposesEverySetting: every setting the marketplace reads is a value of the chart (config, in
// values.schema.json) or one the chart sets itself; a new setting without its place in the chart fails
// here.
func TestChartExposesEverySetting(t *testing.T) {
	ch, err := loader.LoadDir(filepath.Join(tenv.Root, "deploy", "chart"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties struct {
			Config struct {
				Properties map[string]any `json:"properties"`
			} `json:"config"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(ch.Schema, &schema); err != nil {
		t.Fatal(err)
	}
	setByChart := []string{"DATABASE_URL", "REDIS_URL", "KUBECONFIG", "MARKETPLACE_ADDR", "MARKETPLACE_ADMIN_TOKEN", "MARKETPLACE_RPC_SECRET",
		"MARKETPLACE_CACHE_DIR",         // under HOME, a volume of its own
		"CHARTS_DIR", "CHART_REPO_ADDR"} // the chartrepo role, which the chart does not run
	params, err := env.GetFieldParams(&Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range params {
		_, exposed := schema.Properties.Config.Properties[p.Key]
		if exposed == slices.Contains(setByChart, p.Key) {
			t.Errorf("setting %s: in the chart's config values %v, set by the chart %v; want exactly one", p.Key, exposed, !exposed)
		}
	}
	for k := range schema.Properties.Config.Properties {
		if !slices.ContainsFunc(params, func(p env.FieldParams) bool { return p.Key == k }) {
			t.Errorf("the chart's config offers %s, which the marketplace does not read", k)
		}
	}
}

// checkImage reads the pushed image back from the registry: run as 65532, the binary (the same bytes)
// as entrypoint, the CA bundle, nothing else but passwd and directories.
func checkImage(t *testing.T, ref, bin string) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, remote.WithAuth(authn.Anonymous))
	if err != nil {
		t.Fatalf("read the image back: %v", err)
	}
	file, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if c := file.Config; c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{ociimage.Entrypoint}) || !slices.Equal(c.Cmd, []string{"serve"}) || file.OS != "linux" {
		t.Errorf("image config: user %q, entrypoint %v, cmd %v, os %s", c.User, c.Entrypoint, c.Cmd, file.OS)
	}
	want, err := fileDigest(bin)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*tar.Header{}
	fs := mutate.Extract(img)
	defer fs.Close()
	tr := tar.NewReader(fs)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = h
		if h.Name == ociimage.Entrypoint[1:] {
			sum := sha256.New()
			io.Copy(sum, tr)
			if got := hex.EncodeToString(sum.Sum(nil)); got != want || h.Mode&0o111 == 0 {
				t.Errorf("the image's binary: sha256 %s mode %o, want the built one (%s), executable", got, h.Mode, want)
			}
		}
	}
	for _, f := range []string{"usr/local/bin/marketplace", "etc/ssl/certs/ca-certificates.crt", "etc/passwd", "tmp", "home/nonroot"} {
		if files[f] == nil {
			t.Errorf("the image has no %s", f)
		}
	}
	if h := files["home/nonroot"]; h != nil && h.Uid != ociimage.UID {
		t.Errorf("home/nonroot belongs to %d, want %d", h.Uid, ociimage.UID)
	}
	if len(files) > 14 {
		t.Errorf("the image holds %d files, want the binary, the CA bundle, passwd, group and their directories", len(files))
	}
}

// checkDeployment checks a Deployment of the chart: the image by digest, the role, the probes, resource
// requests, a non-root read-only container, and the settings from the chart's Secret.
func checkDeployment(t *testing.T, d *appsv1.Deployment, role, image string, replicas int32) {
	t.Helper()
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	if *d.Spec.Replicas != replicas || c.Image != image || !slices.Equal(c.Args, []string{role}) {
		t.Errorf("%s: %d replicas of %s %v, want %d of %s %s", d.Name, *d.Spec.Replicas, c.Image, c.Args, replicas, image, role)
	}
	for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.StartupProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != "http" {
			t.Errorf("%s: a probe is %+v, want GET %s on http", d.Name, probe, want)
		}
	}
	if c.Ports[0].ContainerPort != 3000 {
		t.Errorf("%s: port %d, want 3000 (MARKETPLACE_ADDR)", d.Name, c.Ports[0].ContainerPort)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: resources %+v, want CPU and memory requests and a memory limit", d.Name, c.Resources)
	}
	psc, sc := pod.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != ociimage.UID ||
		sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: security contexts %+v %+v, want non-root 65532, read-only root, no privilege escalation", d.Name, psc, sc)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != "mp-marketplace-settings" {
		t.Errorf("%s: envFrom %+v, want the settings Secret", d.Name, c.EnvFrom)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if r := env["REDIS_URL"].ValueFrom; r == nil || r.SecretKeyRef == nil || r.SecretKeyRef.Name != "redis-conn" || r.SecretKeyRef.Key != "url" {
		t.Errorf("%s: REDIS_URL %+v, want the key url of Secret redis-conn", d.Name, env["REDIS_URL"])
	}
	if env["KUBECONFIG"].Value != "/etc/marketplace/kubeconfig" || env["MARKETPLACE_ADDR"].Value != ":3000" {
		t.Errorf("%s: KUBECONFIG %q, MARKETPLACE_ADDR %q", d.Name, env["KUBECONFIG"].Value, env["MARKETPLACE_ADDR"].Value)
	}
	if d.Spec.Template.Annotations["checksum/settings"] == "" {
		t.Errorf("%s: no checksum of the settings on its pods: a change of settings would not restart them", d.Name)
	}
}

// workerKubeconfig is the chart's in-cluster kubeconfig of the workers, as a pod of the chart would
// read it, with the files Kubernetes mounts in a pod (the account's token, the cluster's CA) written
// here and the local cluster's address: what the marketplace does with it, it does with the chart's RBAC.
func workerKubeconfig(t *testing.T, ns string) string {
	t.Helper()
	ctx := context.Background()
	cs := kube(t)
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "mp-marketplace-kubeconfig", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inCluster, err := clientcmd.Load([]byte(cm.Data["in-cluster"]))
	if err != nil {
		t.Fatalf("the chart's in-cluster kubeconfig: %v", err)
	}
	cur := inCluster.Contexts[inCluster.CurrentContext]
	cluster, user := inCluster.Clusters[cur.Cluster], inCluster.AuthInfos[cur.AuthInfo]
	const mounted = "/var/run/secrets/kubernetes.io/serviceaccount/"
	if cluster.CertificateAuthority != mounted+"ca.crt" || user.TokenFile != mounted+"token" {
		t.Fatalf("the in-cluster kubeconfig reads %s and %s, want the files Kubernetes mounts", cluster.CertificateAuthority, user.TokenFile)
	}
	api, err := clientcmd.Load([]byte(cm.Data["api"]))
	if err != nil || len(api.AuthInfos) != 0 {
		t.Fatalf("the API replicas' kubeconfig: %v, %d users, want none", err, len(api.AuthInfos))
	}

	local, err := clientcmd.LoadFromFile(tenv.Kubecfg)
	if err != nil {
		t.Fatal(err)
	}
	localCluster := local.Clusters[local.Contexts[local.CurrentContext].Cluster]
	dir := t.TempDir()
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "mp-marketplace",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a token of the workers' service account: %v", err)
	}
	ca := localCluster.CertificateAuthorityData
	if len(ca) == 0 {
		if ca, err = os.ReadFile(localCluster.CertificateAuthority); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "token"), tok.Status.Token)
	writeFile(t, filepath.Join(dir, "ca.crt"), string(ca))
	cluster.Server = localCluster.Server
	cluster.CertificateAuthority = filepath.Join(dir, "ca.crt")
	user.TokenFile = filepath.Join(dir, "token")
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*inCluster, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// helmConfig is a Helm SDK configuration for namespace ns of the local cluster.
func helmConfig(t *testing.T, ns string) *action.Configuration {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = &tenv.Kubecfg, &ns
	cfg := action.NewConfiguration()
	if err := cfg.Init(flags, ns, "secret"); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// renderChart is `helm template`: the chart rendered client-side with values, its schema checked.
func renderChart(ch *chart.Chart, release, ns string, values map[string]any) (string, error) {
	inst := action.NewInstall(action.NewConfiguration())
	inst.DryRunStrategy = action.DryRunClient
	inst.ReleaseName, inst.Namespace = release, ns
	rel, err := inst.RunWithContext(context.Background(), ch, values)
	if err != nil {
		return "", err
	}
	return fmt.Sprint(rel), nil
}

// mergeValues reads YAML documents of values, later ones over earlier ones.
func mergeValues(t *testing.T, docs ...string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, d := range docs {
		v, err := common.ReadValues([]byte(d))
		if err != nil {
			t.Fatal(err)
		}
		out = commonutil.CoalesceTables(v, out)
	}
	return out
}

// selects reports whether selector matches labels.
func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// staticBuild is the marketplace built once per test binary with CGO_ENABLED=0, as its image holds it.
var staticBuild struct {
	once sync.Once
	path string
	err  error
}

// staticMarketplace builds the marketplace as the image holds it (CGO_ENABLED=0, no libc needed), once
// per test binary, into the cache of this worktree: Go skips the link when the binary there is up to
// date. It fails the test if the binary asks for a dynamic loader.
func staticMarketplace(t *testing.T) string {
	t.Helper()
	staticBuild.once.Do(func() {
		root := sha256.Sum256([]byte(tenv.Root))
		cache := os.Getenv("MARKETPLACE_CACHE")
		if cache == "" {
			cache = filepath.Join(os.Getenv("HOME"), ".cache", "marketplace")
		}
		staticBuild.path = filepath.Join(cache, "test", "marketplace-static-"+hex.EncodeToString(root[:4]))
		cmd := exec.Command("go", "build", "-trimpath", "-o", staticBuild.path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			staticBuild.err = fmt.Errorf("build the static marketplace: %v\n%s", err, out)
			return
		}
		f, err := elf.Open(staticBuild.path)
		if err != nil {
			staticBuild.err = err
			return
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				staticBuild.err = fmt.Errorf("%s is linked dynamically: the image has no libc", staticBuild.path)
			}
		}
	})
	if staticBuild.err != nil {
		t.Fatal(staticBuild.err)
	}
	return staticBuild.path
}
