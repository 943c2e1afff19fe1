// Command nok8s links every package `marketplace serve` links except the Kubernetes provider and the
// chart repository (so no Helm and no client-go), runs their init and sleeps. See bench/rssprobe/rss.sh.
package main

import (
	"fmt"
	"os"
	"time"

	_ "github.com/prometheus/client_golang/prometheus/collectors"

	_ "github.com/marketplace/marketplace/internal/billing"
	_ "github.com/marketplace/marketplace/internal/deploy"
	_ "github.com/marketplace/marketplace/internal/httpapi"
	_ "github.com/marketplace/marketplace/internal/postgres"
	_ "github.com/marketplace/marketplace/internal/queue"
)

func main() {
	fmt.Println(os.Getpid())
	time.Sleep(time.Hour)
}
