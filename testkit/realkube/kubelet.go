// The node simulator's kubelet endpoint: container logs (GET /containerLogs/{namespace}/{pod}/{container}), served over TLS
// at the Node's kubelet port, so that `pods/log` through the real kube-apiserver works, including follow.

package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// kubelet serves the container logs of the simulated pods.
type kubelet struct {
	lister func(key string) (*corev1.Pod, bool, error)
}

// startKubelet listens on a free loopback port with the given certificate and returns the port.
func startKubelet(ctx context.Context, certFile, keyFile string, k *kubelet) (int, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return 0, fmt.Errorf("kubelet certificate: %w", err)
	}
	listener, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return 0, fmt.Errorf("kubelet listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/containerLogs/", k.containerLogs)
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = server.Close()
	}()
	go func() {
		if err := server.Serve(listener); err != nil && err != http.ErrServerClosed {
			klog.ErrorS(err, "realkube: kubelet endpoint stopped")
		}
	}()
	return listener.Addr().(*net.TCPAddr).Port, nil
}

// containerLogs writes the log the emulator writes for the same pod (two lines and a status line), then, when
// followed, a tick line every 200 ms until the request ends.
func (k *kubelet) containerLogs(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/containerLogs/"), "/")
	if len(parts) != 3 {
		http.Error(w, "want /containerLogs/{namespace}/{pod}/{container}", http.StatusBadRequest)
		return
	}
	namespace, name, container := parts[0], parts[1], parts[2]
	pod, exists, err := k.lister(namespace + "/" + name)
	if err != nil || !exists {
		http.Error(w, fmt.Sprintf("pod %s/%s not found", namespace, name), http.StatusNotFound)
		return
	}
	image := ""
	for _, c := range pod.Spec.Containers {
		if c.Name == container {
			image = c.Image
		}
	}
	start := pod.CreationTimestamp.UTC().Format(time.RFC3339)
	if pod.Status.StartTime != nil {
		start = pod.Status.StartTime.UTC().Format(time.RFC3339)
	}
	lines := []string{
		fmt.Sprintf("%s [realkube] container %s of pod %s/%s started (image %s)", start, container, namespace, name, image),
		fmt.Sprintf("%s [realkube] listening on :8080", start),
	}
	if fault(pod) != "" {
		lines = append(lines, fmt.Sprintf("%s [realkube] fatal: injected failure", start))
	} else {
		lines = append(lines, fmt.Sprintf("%s [realkube] ready", start))
	}
	if tail, err := strconv.Atoi(r.URL.Query().Get("tailLines")); err == nil && tail >= 0 && tail < len(lines) {
		lines = lines[len(lines)-tail:]
	}
	w.Header().Set("Content-Type", "text/plain")
	for _, line := range lines {
		if _, err := fmt.Fprintln(w, line); err != nil {
			return
		}
	}
	if r.URL.Query().Get("follow") != "true" {
		return
	}
	flusher, _ := w.(http.Flusher)
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	for tick := 1; ; tick++ {
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case now := <-ticker.C:
			if _, err := fmt.Fprintf(w, "%s [realkube] %s/%s/%s tick %d\n", now.UTC().Format(time.RFC3339), namespace, name, container, tick); err != nil {
				return
			}
		}
	}
}
