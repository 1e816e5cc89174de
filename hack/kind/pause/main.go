// pause: the process that holds a pod's namespaces open (the "sandbox" or
// infra container). It must do nothing, forever, cheaply: block until SIGINT
// or SIGTERM, then exit 0; reap children that end up parented to it (it is
// PID 1 when pods share a PID namespace). Built as a static binary for the
// registry.k8s.io/pause image that containerd and kubeadm expect
// (hack/kind/node-image.sh); we build it because no registry is reachable.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("pause (minop) " + version)
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "warning: pause should be the first process")
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			fmt.Fprintf(os.Stderr, "shutting down, got signal: %v\n", s)
			os.Exit(0)
		}
		// Reap every exited child; WNOHANG so we never block the loop.
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

// version is set at build time (-ldflags -X main.version=...).
var version = "dev"
