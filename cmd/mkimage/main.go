// Command mkimage builds the marketplace's OCI image from a statically linked marketplace binary, without
// Docker (package ociimage), and pushes it to a registry or writes it as a tarball that `docker load`,
// `podman load` or `crane push` take.
//
//	CGO_ENABLED=0 go build -o marketplace ./cmd/marketplace
//	go run ./cmd/mkimage -binary marketplace -push registry.example.com/marketplace:1.0.0
//	go run ./cmd/mkimage -binary marketplace -o marketplace.tar -tag marketplace:dev
//
// `make image` does both steps. A push sends no credentials (the machine's Docker configuration is not
// read): push to a registry that takes anonymous pushes, or write the tarball and push it with your
// registry's own tool.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/marketplace/marketplace/internal/ociimage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	flags := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	binary := flags.String("binary", ".local/bin/marketplace-static", "the marketplace binary, built with CGO_ENABLED=0")
	caCerts := flags.String("cacerts", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to put in the image (\"\" for none)")
	push := flags.String("push", "", "push the image to this reference (registry/repository:tag)")
	plainHTTP := flags.Bool("plain-http", false, "speak plain HTTP to the registry (a local one)")
	out := flags.String("o", "", "write the image as a tarball to this file")
	tag := flags.String("tag", "marketplace:dev", "the tag the tarball names")
	version := flags.String("version", "dev", "org.opencontainers.image.version label")
	revision := flags.String("revision", "", "org.opencontainers.image.revision label (the commit)")
	created := flags.String("created", "", "creation time, RFC 3339 (default: the binary's modification time)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *push == "" && *out == "" {
		return fmt.Errorf("give -push REFERENCE, -o FILE, or both")
	}
	st, err := os.Stat(*binary)
	if err != nil {
		return fmt.Errorf("binary: %w (build it with CGO_ENABLED=0 go build -o %s ./cmd/marketplace)", err, *binary)
	}
	at := st.ModTime()
	if *created != "" {
		if at, err = time.Parse(time.RFC3339, *created); err != nil {
			return fmt.Errorf("-created: %w", err)
		}
	}
	labels := map[string]string{
		"org.opencontainers.image.title":       "marketplace",
		"org.opencontainers.image.description": "Self-hosted application marketplace: serve, api, worker and migrate roles",
		"org.opencontainers.image.version":     *version,
		"org.opencontainers.image.created":     at.UTC().Format(time.RFC3339),
	}
	if *revision != "" {
		labels["org.opencontainers.image.revision"] = *revision
	}
	img, err := ociimage.Build(ociimage.Config{Binary: *binary, CACerts: *caCerts, Created: at, Labels: labels})
	if err != nil {
		return err
	}
	if *out != "" {
		t, err := name.NewTag(*tag)
		if err != nil {
			return fmt.Errorf("-tag: %w", err)
		}
		if err := tarball.WriteToFile(*out, t, img); err != nil {
			return fmt.Errorf("write %s: %w", *out, err)
		}
		fmt.Println(*out)
	}
	if *push != "" {
		ref, err := ociimage.Push(ctx, img, *push, *plainHTTP)
		if err != nil {
			return err
		}
		fmt.Println(ref)
	}
	return nil
}
