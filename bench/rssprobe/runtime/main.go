// Command runtime is rssprobe's floor: a Go program that imports nothing of the marketplace. See
// bench/rssprobe/rss.sh.
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	fmt.Println(os.Getpid())
	time.Sleep(time.Hour)
}
