package deploy

import (
	"context"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// RequestUpgrade checks and records an upgrade of an installed deployment to version (0: the latest one
// not deprecated) with inputs (nil: the ones it runs with), then rings the queue.
func (s *Requests) RequestUpgrade(ctx context.Context, id int64, version int, inputs map[string]any) (*marketplace.Deployment, error) {
	_, app, inputs, err := s.checkUpgrade(ctx, id, version, inputs)
	if err != nil {
		return nil, err
	}
	d, err := s.store.RequestUpgrade(ctx, id, app.Version, inputs)
	if err != nil {
		return nil, err
	}
	s.ring(ctx, marketplace.Task{Op: marketplace.OpUpgrade, DeploymentID: d.ID, Attempt: d.Attempts})
	return d, nil
}

// PreviewUpgrade checks an upgrade as RequestUpgrade does and tells what it would change against what
// runs now and what it would cost, recording and changing nothing.
func (s *Requests) PreviewUpgrade(ctx context.Context, id int64, version int, inputs map[string]any) (*marketplace.Preview, error) {
	d, app, inputs, err := s.checkUpgrade(ctx, id, version, inputs)
	if err != nil {
		return nil, err
	}
	if d.Status != marketplace.StatusInstalled {
		return nil, marketplace.Errorf(marketplace.ECONFLICT, "deployment %d is %s: only an installed deployment can be upgraded", id, d.Status)
	}
	preview := &marketplace.Preview{Resources: []marketplace.PreviewResource{}}
	if marketplace.Offers(d.Type).Preview {
		next := *d
		next.Inputs = inputs
		if preview, err = s.inspectors[d.Type].PreviewUpgrade(ctx, &next, app); err != nil {
			return nil, err
		}
	}
	preview.Version, preview.HourlyRate, preview.Cost30Days = app.Version, app.HourlyRate, marketplace.CostFor30Days(app.HourlyRate)
	return preview, nil
}

// checkUpgrade validates an upgrade request: the deployment is the caller's, its provider upgrades, the
// version exists and the inputs (nil: the ones it runs with) fit it.
func (s *Requests) checkUpgrade(ctx context.Context, id int64, version int, inputs map[string]any) (*marketplace.Deployment, *marketplace.Application, map[string]any, error) {
	d, err := s.store.FindDeploymentByID(ctx, id)
	if err != nil {
		return nil, nil, nil, err
	}
	if s.inspectors[d.Type] == nil || !marketplace.Offers(d.Type).Upgrade {
		return nil, nil, nil, marketplace.Errorf(marketplace.EINVALID, "deployments of type %q cannot be upgraded yet: install the new version beside it", d.Type)
	}
	if inputs == nil {
		inputs = d.Inputs
	}
	app, err := s.store.FindAppVersion(ctx, d.ApplicationID, version)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := s.checkSigned(app); err != nil {
		return nil, nil, nil, err
	}
	values, err := app.Values(inputs)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := s.checkValues(ctx, app, values); err != nil {
		return nil, nil, nil, err
	}
	return d, app, inputs, nil
}

// RequestRollback records a return of an installed deployment to the version and inputs of one of its
// earlier revisions (0: the one before the current), as an upgrade to them: Helm makes it a new revision.
func (s *Requests) RequestRollback(ctx context.Context, id int64, revision int) (*marketplace.Deployment, error) {
	// The current revision and the one before it, then the one asked for: never the whole history.
	latest, _, err := s.store.FindRevisions(ctx, marketplace.RevisionFilter{DeploymentID: id, NewestFirst: true,
		Page: marketplace.Page{Number: 1, Limit: 2}})
	if err != nil {
		return nil, err
	}
	if revision == 0 && len(latest) >= 2 {
		revision = latest[1].Revision
	}
	if revision != 0 && len(latest) > 0 && revision != latest[0].Revision {
		revs, _, err := s.store.FindRevisions(ctx, marketplace.RevisionFilter{DeploymentID: id, Revision: revision,
			Page: marketplace.Page{Number: 1, Limit: 1}})
		if err != nil {
			return nil, err
		}
		if len(revs) == 1 {
			return s.RequestUpgrade(ctx, id, revs[0].Version, revs[0].Inputs)
		}
	}
	return nil, marketplace.Errorf(marketplace.EINVALID, "deployment %d has no earlier revision %d to roll back to (see GET /api/deployments/%d/revisions)", id, revision, id)
}
