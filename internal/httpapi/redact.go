package httpapi

import "github.com/marketplace/marketplace/internal/marketplace"

// Credentials in a publisher's repoURL are stored, because fetching the chart needs them, and never
// shown: not to the publisher (the response of any request may end up in a log or a screenshot) and
// above all not to consumers, who read the application and the failure reasons of their deployments.

// redactApp hides the credentials of a's repository URL, in place.
func redactApp(a *marketplace.Application) *marketplace.Application {
	a.Deployment.RepoURL = marketplace.RedactURLs(a.Deployment.RepoURL)
	return a
}

// redactDeployment hides the credentials of any URL quoted in d's failure reason (a chart repository's
// error names the URL it fetched), in place.
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

// keepStoredCredentials lets a publisher send back the application it read: a repoURL whose credentials
// are the redacted placeholder means the stored ones, when the rest of the URL is unchanged.
func keepStoredCredentials(sent *marketplace.DeploymentSpec, stored marketplace.DeploymentSpec) {
	if sent.RepoURL != stored.RepoURL && sent.RepoURL == marketplace.RedactURLs(stored.RepoURL) {
		sent.RepoURL = stored.RepoURL
	}
}
