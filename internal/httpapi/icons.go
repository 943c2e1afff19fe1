package httpapi

import (
	"context"
	"log/slog"

	"github.com/marketplace/marketplace/internal/chartmeta"
	"github.com/marketplace/marketplace/internal/marketplace"
)

type setIconInput struct {
	ID      int64  `path:"id" minimum:"1"`
	RawBody []byte `contentType:"image/png" doc:"a PNG, JPEG or GIF picture of at most 512×512 pixels and 1 MiB"`
}

type iconAnswer struct {
	Icon string `json:"icon" doc:"the icon's path on this marketplace, /icons/<sha256>.png"`
}

// setIcon takes a vm application's icon from its publisher: decoded and re-encoded as PNG, or refused
// (an SVG, anything else, a picture over 512 pixels a side). A chart's icon is the chart's.
func setIcon(icons marketplace.AboutService, log *slog.Logger) func(context.Context, *setIconInput) (*body[iconAnswer], error) {
	return func(ctx context.Context, in *setIconInput) (*body[iconAnswer], error) {
		png, err := chartmeta.Reencode(in.RawBody)
		if err != nil {
			return nil, problem(ctx, log, marketplace.Errorf(marketplace.EINVALID, "%v", err))
		}
		path, err := icons.SaveIcon(ctx, in.ID, png)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[iconAnswer]{iconAnswer{Icon: path}}, nil
	}
}
