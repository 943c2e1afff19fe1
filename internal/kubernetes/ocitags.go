package kubernetes

import (
	"context"
	"errors"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/marketplace/marketplace/internal/marketplace"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
)

// A publisher's registry may list tags in pages forever (a Link: rel="next" to itself, or to one more
// page each time). A chart has far fewer versions than this.
const (
	tagPageSize = 1000
	maxTagPages = 10
	maxTags     = 10000
)

// errTooManyTags stops a tag listing at its bound.
var errTooManyTags = errors.New("too many tags")

// ociTags lists the versions of the chart at ref (host/path, no scheme) as Helm's registry client does
// (semantic versions only, "_" read as "+", newest first), but with the caller's context, the guard's
// client and anonymous credentials, and at most maxTagPages pages and maxTags tags. Helm's own
// registry.Client.Tags lists with context.Background() and follows every page.
func ociTags(ctx context.Context, client *auth.Client, plainHTTP bool, ref string) ([]string, error) {
	repo, err := remote.NewRepository(ref)
	if err != nil {
		return nil, err
	}
	repo.Client, repo.PlainHTTP, repo.TagListPageSize = client, plainHTTP, tagPageSize
	var versions []*semver.Version
	pages, seen := 0, 0
	err = repo.Tags(ctx, "", func(tags []string) error {
		pages++
		seen += len(tags)
		if pages > maxTagPages || seen > maxTags {
			return errTooManyTags
		}
		for _, tag := range tags {
			if v, err := semver.StrictNewVersion(strings.ReplaceAll(tag, "_", "+")); err == nil {
				versions = append(versions, v)
			}
		}
		return nil
	})
	if errors.Is(err, errTooManyTags) {
		return nil, marketplace.Errorf(marketplace.EINVALID, "the registry of oci://%s lists more than %d tags or %d pages of them: a chart has far fewer versions",
			marketplace.RedactURLs(ref), maxTags, maxTagPages)
	}
	if err != nil {
		return nil, err
	}
	sort.Sort(sort.Reverse(semver.Collection(versions)))
	tags := make([]string, len(versions))
	for i, v := range versions {
		tags[i] = v.String()
	}
	return tags, nil
}
