package httpapi

import (
	"context"
	"log/slog"

	"github.com/marketplace/marketplace/internal/marketplace"
)

type registerTargetInput struct {
	Body struct {
		Kind       string            `json:"kind" enum:"k8s,vm" doc:"k8s: a Kubernetes cluster, by kubeconfig; vm: a VM host, by libvirt uri"`
		Name       string            `json:"name" minLength:"1" maxLength:"63" doc:"lower-case letters, digits and dashes; unique per kind; not default"`
		Labels     map[string]string `json:"labels,omitempty" required:"false" doc:"labels as Kubernetes has them, e.g. region=eu, env=prod"`
		Kubeconfig string            `json:"kubeconfig,omitempty" required:"false" maxLength:"262144" doc:"a k8s target's kubeconfig (its current context is used); sealed at rest, never shown again"`
		URI        string            `json:"uri,omitempty" required:"false" maxLength:"2000" doc:"a vm target's libvirt URI: qemu+tcp://host/system, qemu+ssh://user@host/system or qemu+unix:///system?socket=/path"`
	}
}

// registerTarget registers a cluster or a VM host (the operator's only); its health shows once a worker
// has reached it.
func registerTarget(targets marketplace.TargetService, log *slog.Logger) func(context.Context, *registerTargetInput) (*body[*marketplace.Target], error) {
	return func(ctx context.Context, in *registerTargetInput) (*body[*marketplace.Target], error) {
		t, err := targets.RegisterTarget(ctx, marketplace.TargetInput{Kind: in.Body.Kind, Name: in.Body.Name, Labels: in.Body.Labels,
			Kubeconfig: []byte(in.Body.Kubeconfig), URI: in.Body.URI})
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[*marketplace.Target]{t}, nil
	}
}

type targetList struct {
	Targets []*marketplace.Target `json:"targets"`
}

func listTargets(targets marketplace.TargetService, log *slog.Logger) func(context.Context, *struct{}) (*body[targetList], error) {
	return func(ctx context.Context, _ *struct{}) (*body[targetList], error) {
		ts, err := targets.FindTargets(ctx)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		if ts == nil {
			ts = []*marketplace.Target{}
		}
		return &body[targetList]{targetList{Targets: ts}}, nil
	}
}

func getTarget(targets marketplace.TargetService, log *slog.Logger) func(context.Context, *idInput) (*body[*marketplace.Target], error) {
	return func(ctx context.Context, in *idInput) (*body[*marketplace.Target], error) {
		t, err := targets.FindTarget(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[*marketplace.Target]{t}, nil
	}
}

func removeTarget(targets marketplace.TargetService, log *slog.Logger) func(context.Context, *idInput) (*struct{}, error) {
	return func(ctx context.Context, in *idInput) (*struct{}, error) {
		if err := targets.RemoveTarget(ctx, in.ID); err != nil {
			return nil, problem(ctx, log, err)
		}
		return nil, nil
	}
}
