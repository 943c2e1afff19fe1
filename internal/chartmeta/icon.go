package chartmeta

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // the icon formats accepted: GIF, JPEG and PNG, decoded and re-encoded as PNG
	_ "image/jpeg"
	"image/png"
	"net/http"

	"github.com/marketplace/marketplace/internal/fetch"
)

// Bounds of an icon: what it may weigh as fetched, and its largest side. A 512×512 icon re-encodes to
// at most about 1 MiB of PNG.
const (
	MaxIconBytes = 1 << 20
	MaxIconSide  = 512
)

// fetchIcon fetches a package's icon through the guard, at most MaxIconBytes of it (checked on the
// announced length, then while it streams), and returns it re-encoded as PNG.
func fetchIcon(ctx context.Context, guard *fetch.Guard, rawURL string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, http.NoBody)
	if err != nil {
		return nil, fmt.Errorf("the icon URL is not valid")
	}
	req.Header.Set("User-Agent", "marketplace")
	req.Header.Set("Accept", "image/png, image/jpeg, image/gif")
	resp, err := guard.HTTPClient().Do(req)
	var tooLarge *fetch.TooLargeError
	if errors.As(err, &tooLarge) {
		return nil, fmt.Errorf("the icon weighs more than the %d bytes an icon may", MaxIconBytes)
	} else if err != nil {
		return nil, fmt.Errorf("the icon cannot be fetched: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the icon cannot be fetched: the server answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	if resp.ContentLength > MaxIconBytes {
		return nil, fmt.Errorf("the icon weighs %d bytes, more than the %d an icon may", resp.ContentLength, MaxIconBytes)
	}
	raw, err := fetch.ReadAll(resp.Body, MaxIconBytes, "the icon")
	if errors.As(err, &tooLarge) {
		return nil, fmt.Errorf("the icon weighs more than the %d bytes an icon may", MaxIconBytes)
	} else if err != nil {
		return nil, fmt.Errorf("the icon cannot be read: %w", err)
	}
	return Reencode(raw)
}

// Reencode decodes a PNG, JPEG or GIF picture of at most MaxIconSide pixels a side (its header is read
// first, so a huge one is refused before it is decoded) and encodes it anew as PNG: nothing of the
// publisher's file but its pixels is served. Anything else is refused: an SVG is a program, not a
// picture.
func Reencode(raw []byte) ([]byte, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil {
		return nil, errors.New("the icon is not a PNG, JPEG or GIF picture (SVG and other formats are refused)")
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > MaxIconSide || cfg.Height > MaxIconSide {
		return nil, fmt.Errorf("the icon is %d×%d pixels; an icon may be at most %d×%d", cfg.Width, cfg.Height, MaxIconSide, MaxIconSide)
	}
	img, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("the icon is not a valid %s picture", format)
	}
	var out bytes.Buffer
	if err := png.Encode(&out, img); err != nil {
		return nil, fmt.Errorf("re-encode the icon: %w", err)
	}
	return out.Bytes(), nil
}
