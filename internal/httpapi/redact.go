package httpapi

import "github.com/marketplace/marketplace/internal/marketplace"

// Credentials in a publisher's URLs (repoURL, a vm image) are stored for fetching and never shown: see
// marketplace.RedactURLs.

// redactApp hides the credentials of a's repository and image URLs, in place.
func redactApp(a *marketplace.Application) *marketplace.Application {
	a.Deployment = a.Deployment.Redacted()
	return a
}

// redactVersion hides the credentials of v's repository and image URLs, in place.
func redactVersion(v *marketplace.AppVersion) *marketplace.AppVersion {
	v.Deployment = v.Deployment.Redacted()
	return v
}

// redactDeployment hides the credentials of any URL quoted in d's failure reason (a chart repository's
// or an image server's error names the URL it fetched), in place. Reasons are recorded redacted too;
// this covers the ones recorded before they were.
func redactDeployment(d *marketplace.Deployment) *marketplace.Deployment {
	d.FailureReason = marketplace.RedactURLs(d.FailureReason)
	return d
}

func redactDeployments(ds []*marketplace.Deployment) []*marketplace.Deployment {
	for _, d := range ds {
		redactDeployment(d)
	}
	return ds
}
