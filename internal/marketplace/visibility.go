package marketplace

import (
	"context"
	"slices"
)

// Who may see an application (issue #21 item 3).
const (
	VisibilityPublic  = "public"  // everyone's: the catalog's default
	VisibilityPrivate = "private" // its owner's (its publisher, or its organization's members) and the organizations it is shared with
)

// Visibility is who may see an application: everyone (public), or only its owner and the members of the
// organizations it is shared with (private). A caller who may not see an application is told it does not
// exist, everywhere (catalog, search, its page, versions, installs, upgrades); deployments already
// running keep running.
type Visibility struct {
	Visibility string  `json:"visibility" enum:"public,private" doc:"public (everyone) or private (its owner, and the members of the organizations in shared_with)"`
	SharedWith []int64 `json:"shared_with" required:"false" maxItems:"100" doc:"private only: the organizations whose members see it, besides its owner"`
}

// Validate checks a visibility before it is stored and sorts its organizations.
func (v *Visibility) Validate() error {
	if v.Visibility == "" {
		v.Visibility = VisibilityPublic
	}
	if v.Visibility != VisibilityPublic && v.Visibility != VisibilityPrivate {
		return Errorf(EINVALID, "visibility must be public or private, got %q", v.Visibility)
	}
	if v.SharedWith == nil {
		v.SharedWith = []int64{}
	}
	if v.Visibility == VisibilityPublic && len(v.SharedWith) > 0 {
		return Errorf(EINVALID, "a public application is everyone's: shared_with is for a private one")
	}
	if len(v.SharedWith) > 100 {
		return Errorf(EINVALID, "shared_with holds at most 100 organizations, got %d", len(v.SharedWith))
	}
	for _, id := range v.SharedWith {
		if id < 1 {
			return Errorf(EINVALID, "shared_with: %d is no organization id", id)
		}
	}
	slices.Sort(v.SharedWith)
	v.SharedWith = slices.Compact(v.SharedWith)
	return nil
}

// VisibilityService reads and changes who may see an application; only those who may manage it (its
// publisher, an admin or publisher of its organization, the operator) may.
type VisibilityService interface {
	FindVisibility(ctx context.Context, appID int64) (*Visibility, error)
	// SetVisibility replaces the application's visibility (and the organizations it is shared with);
	// an organization that does not exist is EINVALID.
	SetVisibility(ctx context.Context, appID int64, v *Visibility) error
}
