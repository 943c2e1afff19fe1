// Command all links every package `marketplace serve` links, Helm and client-go included, runs their
// init and sleeps. See bench/rssprobe/rss.sh.
package main

import (
	"fmt"
	"os"
	"time"

	_ "github.com/prometheus/client_golang/prometheus/collectors"

	_ "github.com/marketplace/marketplace/internal/billing"
	_ "github.com/marketplace/marketplace/internal/chartrepo"
	_ "github.com/marketplace/marketplace/internal/deploy"
	_ "github.com/marketplace/marketplace/internal/httpapi"
	_ "github.com/marketplace/marketplace/internal/kubernetes"
	_ "github.com/marketplace/marketplace/internal/postgres"
	_ "github.com/marketplace/marketplace/internal/queue"
)

func main() {
	fmt.Println(os.Getpid())
	time.Sleep(time.Hour)
}
