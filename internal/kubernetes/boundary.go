package kubernetes

import (
	"context"
	"fmt"
	"strconv"

	"golang.org/x/sync/errgroup"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
)

// Each deployment is a boundary of its own: a namespace made for it alone, and a deployer identity that
// only it has. The identity is a service account in the marketplace's system namespace, so no pod of
// the chart (which can only name service accounts of its own namespace) ever runs with it, and it is
// bound in one namespace only, so a chart's `lookup` cannot read another deployment's release record.
// What RBAC cannot say is said by a ValidatingAdmissionPolicy the marketplace installs in the cluster.

// Labels the marketplace puts on what it creates.
const (
	labelManagedBy  = "app.kubernetes.io/managed-by"
	labelInstance   = "marketplace.dev/instance"
	labelProject    = "marketplace.dev/project"
	labelDeployment = "marketplace.dev/deployment"

	// deployerBinding is the RoleBinding, in each deployment's namespace, that grants the deployer role
	// to that deployment's identity. Charts may not touch it.
	deployerBinding = "marketplace-deployer"
)

// names are the cluster-wide objects of one marketplace.
func (p *Provider) systemNamespace() string     { return p.cfg.NamespacePrefix + "-system" }
func (p *Provider) deployerRole() string        { return p.cfg.NamespacePrefix + "-deployer" }
func (p *Provider) admissionPolicy() string     { return p.cfg.NamespacePrefix + "-deployments" }
func deployerAccount(deploymentID int64) string { return ReleaseName(deploymentID) }

// deployerUser is the user name Helm impersonates for a deployment.
func (p *Provider) deployerUser(deploymentID int64) string {
	return "system:serviceaccount:" + p.systemNamespace() + ":" + deployerAccount(deploymentID)
}

func (p *Provider) labels(extra map[string]string) map[string]string {
	l := map[string]string{labelManagedBy: "marketplace", labelInstance: p.cfg.Instance}
	for k, v := range extra {
		l[k] = v
	}
	return l
}

// ensureCluster creates, once per process, what every deployment relies on: the system namespace, the
// deployer role and the admission policy with its binding. Objects that exist are brought up to date,
// so a new version of the rules reaches a cluster set up by an older one.
//
// The attempts of a burst arrive here together: one sets the cluster up while the others wait for it,
// rather than all updating the same objects at once and all but one failing on a conflict (and waiting
// out a retry's backoff). Another replica doing the same meanwhile is a conflict retried at once.
func (p *Provider) ensureCluster(ctx context.Context) error {
	select {
	case p.setup <- struct{}{}:
		defer func() { <-p.setup }()
	case <-ctx.Done():
		return fmt.Errorf("wait for the cluster's set-up: %w", ctx.Err())
	}
	if p.clusterReady {
		return nil
	}
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error { return p.setUpCluster(ctx) }); err != nil {
		return err
	}
	p.clusterReady = true
	return nil
}

// setUpCluster creates or updates the objects of ensureCluster.
func (p *Provider) setUpCluster(ctx context.Context) error {
	if _, err := p.ensureOwnNamespace(ctx, p.systemNamespace(), p.labels(nil), "the marketplace's system namespace"); err != nil {
		return err
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: p.deployerRole(), Labels: p.labels(nil)}, Rules: deployerRules()}
	if _, err := p.admin.RbacV1().ClusterRoles().Update(ctx, role, metav1.UpdateOptions{}); apierrors.IsNotFound(err) {
		_, err = p.admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create cluster role %s: %w", role.Name, err)
		}
	} else if err != nil {
		return fmt.Errorf("update cluster role %s: %w", role.Name, err)
	}
	policy, binding := p.admissionObjects()
	policies := p.admin.AdmissionregistrationV1().ValidatingAdmissionPolicies()
	if old, err := policies.Get(ctx, policy.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		_, err = policies.Create(ctx, policy, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create admission policy %s: %w", policy.Name, err)
		}
	} else if err != nil {
		return fmt.Errorf("get admission policy %s: %w", policy.Name, err)
	} else {
		policy.ResourceVersion = old.ResourceVersion
		if _, err := policies.Update(ctx, policy, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update admission policy %s: %w", policy.Name, err)
		}
	}
	bindings := p.admin.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings()
	if old, err := bindings.Get(ctx, binding.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		_, err = bindings.Create(ctx, binding, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create admission policy binding %s: %w", binding.Name, err)
		}
	} else if err != nil {
		return fmt.Errorf("get admission policy binding %s: %w", binding.Name, err)
	} else {
		binding.ResourceVersion = old.ResourceVersion
		if _, err := bindings.Update(ctx, binding, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update admission policy binding %s: %w", binding.Name, err)
		}
	}
	return nil
}

// deployerRules is what a chart may do inside its own namespace: the objects applications are made
// of. Not in it: NetworkPolicies, ResourceQuotas and LimitRanges (the marketplace's fences), anything
// cluster-scoped, Endpoints, and the escalate, bind and impersonate verbs.
func deployerRules() []rbacv1.PolicyRule {
	all := []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
	read := []string{"get", "list", "watch"}
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Verbs: all, Resources: []string{"pods", "pods/log", "services",
			"configmaps", "secrets", "serviceaccounts", "persistentvolumeclaims", "replicationcontrollers"}},
		// Endpoints written by hand would send a Service's traffic anywhere (CVE-2021-25740): read only.
		{APIGroups: []string{""}, Verbs: read, Resources: []string{"endpoints", "events", "resourcequotas", "limitranges"}},
		{APIGroups: []string{"apps"}, Verbs: all, Resources: []string{"deployments", "deployments/scale", "statefulsets",
			"statefulsets/scale", "daemonsets", "replicasets", "controllerrevisions"}},
		{APIGroups: []string{"batch"}, Verbs: all, Resources: []string{"jobs", "cronjobs"}},
		{APIGroups: []string{"autoscaling"}, Verbs: all, Resources: []string{"horizontalpodautoscalers"}},
		{APIGroups: []string{"policy"}, Verbs: all, Resources: []string{"poddisruptionbudgets"}},
		{APIGroups: []string{"networking.k8s.io"}, Verbs: all, Resources: []string{"ingresses"}},
		{APIGroups: []string{"networking.k8s.io"}, Verbs: read, Resources: []string{"networkpolicies"}},
		{APIGroups: []string{"discovery.k8s.io"}, Verbs: read, Resources: []string{"endpointslices"}},
		{APIGroups: []string{"coordination.k8s.io"}, Verbs: all, Resources: []string{"leases"}},
		// Charts may give their own service accounts roles; the admission policy keeps the subjects
		// inside the namespace and the deployer's own binding out of reach.
		{APIGroups: []string{"rbac.authorization.k8s.io"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"},
			Resources: []string{"roles", "rolebindings"}},
	}
}

// admissionObjects are the policy that holds on every request made in the marketplace's namespaces by
// a deployer identity or by any service account of a deployment's namespace (a chart may give its own
// accounts rights, and its pods run as them), whatever the cluster's flags, and its binding.
func (p *Provider) admissionObjects() (*admissionv1.ValidatingAdmissionPolicy, *admissionv1.ValidatingAdmissionPolicyBinding) {
	fail := admissionv1.Fail
	deny := []admissionv1.ValidationAction{admissionv1.Deny}
	everything := admissionv1.NamedRuleWithOperations{RuleWithOperations: admissionv1.RuleWithOperations{
		Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update, admissionv1.Delete},
		Rule:       admissionv1.Rule{APIGroups: []string{"*"}, APIVersions: []string{"*"}, Resources: []string{"*"}}}}
	chartIdentity := fmt.Sprintf("request.userInfo.username.startsWith(%q) || request.userInfo.username.startsWith(%q)",
		"system:serviceaccount:"+p.systemNamespace()+":", "system:serviceaccount:"+p.cfg.NamespacePrefix+"-deployment-")
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: p.admissionPolicy(), Labels: p.labels(nil)},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{labelInstance: p.cfg.Instance}},
				ResourceRules:     []admissionv1.NamedRuleWithOperations{everything},
			},
			MatchConditions: []admissionv1.MatchCondition{{Name: "a-chart-identity", Expression: chartIdentity}},
			Validations: []admissionv1.Validation{
				{Expression: `request.operation == "DELETE" || request.kind.kind != "Service" || !has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0`,
					Message: "a marketplace deployment may not set spec.externalIPs on a Service (it would intercept other traffic, CVE-2020-8554)"},
				{Expression: `request.kind.kind != "RoleBinding" || request.name != "` + deployerBinding + `"`,
					Message: "the marketplace's own role binding " + deployerBinding + " may not be created, changed or deleted by a chart"},
				{Expression: `request.operation == "DELETE" || request.kind.kind != "RoleBinding" || !has(object.subjects) || object.subjects.all(s, s.kind == "ServiceAccount" && has(s.namespace) && s.namespace == request.namespace)`,
					Message: "a marketplace deployment may bind roles only to service accounts of its own namespace"},
				// A finalizer nobody removes would keep the namespace from ever being deleted, and with it
				// the uninstall; only Kubernetes' own are allowed.
				{Expression: `request.operation == "DELETE" || !has(object.metadata.finalizers) || object.metadata.finalizers.all(f, f.startsWith("kubernetes.io/") || f.startsWith("batch.kubernetes.io/") || f == "foregroundDeletion" || f == "orphan")`,
					Message: "a marketplace deployment may not set finalizers of its own (they would keep its namespace from being deleted)"},
			},
		},
	}
	policy.Spec.Validations = append(policy.Spec.Validations, p.crossTenantRules()...)
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: p.admissionPolicy(), Labels: p.labels(nil)},
		Spec:       admissionv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: policy.Name, ValidationActions: deny},
	}
	return policy, binding
}

// ensureOwnNamespace creates namespace ns with labels want, or accepts an existing one only if it carries
// them all: a namespace the marketplace did not create for this purpose is never adopted. created says
// whether this call created it.
func (p *Provider) ensureOwnNamespace(ctx context.Context, ns string, want map[string]string, what string) (created bool, err error) {
	podSecurity := map[string]string{
		// Pod Security "baseline": no privileged pods, host namespaces or hostPath volumes, which would
		// let a chart out of its namespace through the node.
		"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "baseline"}
	labels := map[string]string{}
	for k, v := range want {
		labels[k] = v
	}
	for k, v := range podSecurity {
		labels[k] = v
	}
	_, err = p.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}, metav1.CreateOptions{})
	if err == nil {
		return true, nil
	} else if !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("create namespace %s: %w", ns, err)
	}
	existing, err := p.admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("get namespace %s: %w", ns, err)
	}
	for k, v := range want {
		if existing.Labels[k] != v {
			return false, fmt.Errorf("namespace %s already exists and was not created by this marketplace as %s; it is never adopted: "+
				"remove it, or give this marketplace another K8S_NAMESPACE_PREFIX", ns, what)
		}
	}
	if existing.DeletionTimestamp != nil {
		return false, fmt.Errorf("namespace %s is still being deleted; a later attempt will create it again", ns)
	}
	return false, nil
}

// ensureDeploymentNamespace creates a deployment's namespace and everything in it that the marketplace
// owns: the deployer identity and its binding, the default NetworkPolicy, the ResourceQuota and the
// LimitRange. Each is created unless it exists, so a retry after a crash converges. created says
// whether this call created the namespace (so nothing else is in it yet).
func (p *Provider) ensureDeploymentNamespace(ctx context.Context, d deploymentRef) (created bool, err error) {
	ns := p.Namespace(d.id)
	want := p.labels(map[string]string{labelProject: strconv.FormatInt(d.projectID, 10), labelDeployment: strconv.FormatInt(d.id, 10)})
	if created, err = p.ensureOwnNamespace(ctx, ns, want, "the namespace of deployment "+strconv.FormatInt(d.id, 10)); err != nil {
		return false, err
	}
	owned := metav1.ObjectMeta{Labels: p.labels(map[string]string{labelDeployment: strconv.FormatInt(d.id, 10)})}
	create := func(what string, err error) error {
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s for namespace %s: %w", what, ns, err)
		}
		return nil
	}
	// The five are independent of each other: created at once, and all in place before Helm starts.
	var g errgroup.Group
	g.Go(func() error {
		account := owned
		account.Name = deployerAccount(d.id)
		_, err := p.admin.CoreV1().ServiceAccounts(p.systemNamespace()).Create(ctx,
			&corev1.ServiceAccount{ObjectMeta: account, AutomountServiceAccountToken: new(bool)}, metav1.CreateOptions{})
		return create("the deployer service account", err)
	})
	g.Go(func() error {
		binding := owned
		binding.Name = deployerBinding
		_, err := p.admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: binding,
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: p.deployerRole()},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: deployerAccount(d.id), Namespace: p.systemNamespace()}},
		}, metav1.CreateOptions{})
		return create("the deployer role binding", err)
	})
	g.Go(func() error {
		policy := owned
		policy.Name = "marketplace-project-only"
		_, err := p.admin.NetworkingV1().NetworkPolicies(ns).Create(ctx, &networkingv1.NetworkPolicy{ObjectMeta: policy,
			Spec: p.networkPolicy(d.projectID)}, metav1.CreateOptions{})
		return create("the network policy", err)
	})
	g.Go(func() error {
		quota := owned
		quota.Name = "marketplace-quota"
		_, err := p.admin.CoreV1().ResourceQuotas(ns).Create(ctx, &corev1.ResourceQuota{ObjectMeta: quota,
			Spec: corev1.ResourceQuotaSpec{Hard: p.cfg.Quota}}, metav1.CreateOptions{})
		return create("the resource quota", err)
	})
	g.Go(func() error {
		limits := owned
		limits.Name = "marketplace-limits"
		_, err := p.admin.CoreV1().LimitRanges(ns).Create(ctx, &corev1.LimitRange{ObjectMeta: limits,
			Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer,
				Default: p.cfg.DefaultLimits, DefaultRequest: p.cfg.DefaultRequests}}}}, metav1.CreateOptions{})
		return create("the limit range", err)
	})
	return created, g.Wait()
}

// networkPolicy lets traffic in from the deployments of the same project only, and out to them, to the
// cluster's DNS and to public addresses: not to other projects, the nodes, the API server, cloud
// metadata or anything else on the operator's private networks.
func (p *Provider) networkPolicy(projectID int64) networkingv1.NetworkPolicySpec {
	sameProject := networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
		labelInstance: p.cfg.Instance, labelProject: strconv.FormatInt(projectID, 10)}}}
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	dns := intstr.FromInt32(53)
	return networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{sameProject}}},
		Egress: []networkingv1.NetworkPolicyEgressRule{
			{To: []networkingv1.NetworkPolicyPeer{sameProject}},
			{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &dns}, {Protocol: &tcp, Port: &dns}}},
			{To: []networkingv1.NetworkPolicyPeer{
				{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8", "172.16.0.0/12",
					"192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8"}}},
				{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: []string{"fc00::/7", "fe80::/10", "::1/128"}}},
			}},
		},
	}
}

// deploymentRef is what the namespace of a deployment is made from.
type deploymentRef struct{ id, projectID int64 }

// ownsNamespace reports whether namespace n is the one this marketplace made for deployment id.
func (p *Provider) ownsNamespace(n *corev1.Namespace, id int64) bool {
	return n.Labels[labelInstance] == p.cfg.Instance && n.Labels[labelDeployment] == strconv.FormatInt(id, 10)
}

// removeDeploymentNamespace deletes a deployment's namespace (Kubernetes deletes everything in it,
// and nothing new can be made in it meanwhile), then the pods still in it (stopPods), and meanwhile the
// deployment's deployer identity: once it returns, nothing of the deployment runs.
func (p *Provider) removeDeploymentNamespace(ctx context.Context, ns string, id int64) error {
	var g errgroup.Group
	g.Go(func() error {
		err := p.admin.CoreV1().ServiceAccounts(p.systemNamespace()).Delete(ctx, deployerAccount(id), metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete the deployer service account of deployment %d: %w", id, err)
		}
		return nil
	})
	g.Go(func() error {
		background := metav1.DeletePropagationBackground
		err := p.admin.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{PropagationPolicy: &background})
		if apierrors.IsNotFound(err) {
			return nil
		} else if err != nil {
			return fmt.Errorf("delete namespace %s: %w", ns, err)
		}
		return p.stopPods(ctx, ns)
	})
	return g.Wait()
}
