// The node simulator's kubelet endpoint: container logs (GET /containerLogs/{namespace}/{pod}/{container}) and exec
// (/exec/{namespace}/{pod}/{container}?command=...: SPDY or WebSocket streams, served by the kubelet's own
// remotecommand.ServeExec over the simulated runtime of simexec.go), served over TLS at the Node's kubelet port, so
// that `pods/log`, including follow, and `pods/exec` through the real kube-apiserver work.

package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/klog/v2"
	remotecommandserver "k8s.io/kubelet/pkg/cri/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// kubelet serves the container logs of the simulated pods and runs commands in their containers.
type kubelet struct {
	node   string
	lister func(key string) (*corev1.Pod, bool, error)
}

// streamIdleTimeout is the kubelet's default: an exec session with no traffic ends after it.
const streamIdleTimeout = 4 * time.Hour

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
	mux.HandleFunc("/exec/", k.exec)
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

// exec runs a command in a container of a pod on this node: GET or POST
// /exec/{namespace}/{pod}/{container}?command=...&stdin=1&stdout=1&stderr=1&tty=1, upgraded to SPDY (what
// kube-apiserver sends, also when it translates a client's WebSocket) or a WebSocket.
func (k *kubelet) exec(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/exec/"), "/")
	if len(parts) != 3 {
		http.Error(w, "want /exec/{namespace}/{pod}/{container}", http.StatusBadRequest)
		return
	}
	namespace, name, container := parts[0], parts[1], parts[2]
	pod, exists, err := k.lister(namespace + "/" + name)
	if err != nil || !exists || pod.Spec.NodeName != k.node {
		http.Error(w, fmt.Sprintf("pod %s/%s not found on node %s", namespace, name, k.node), http.StatusNotFound)
		return
	}
	if !hasContainer(pod, container) {
		http.Error(w, fmt.Sprintf("container %q not found in pod %s/%s", container, namespace, name), http.StatusNotFound)
		return
	}
	if !containerRunning(pod, container) {
		// What a kubelet answers for a container its runtime does not run (waiting, crashlooping, terminated).
		http.Error(w, fmt.Sprintf("container not found (%q)", container), http.StatusNotFound)
		return
	}
	opts, err := remotecommandserver.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	command := r.URL.Query()["command"]
	if len(command) == 0 {
		http.Error(w, "missing command", http.StatusBadRequest)
		return
	}
	remotecommandserver.ServeExec(w, r, simExecutor{}, pod.Name, pod.UID, container, command, opts,
		streamIdleTimeout, remotecommandconsts.DefaultStreamCreationTimeout, remotecommandconsts.SupportedStreamingProtocols)
}

func hasContainer(pod *corev1.Pod, name string) bool {
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// containerRunning says whether the pod's status reports the container running (the simulator reports a pod's
// containers once it started it).
func containerRunning(pod *corev1.Pod, name string) bool {
	for _, statuses := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for _, s := range statuses {
			if s.Name == name {
				return s.State.Running != nil
			}
		}
	}
	return false
}

// simExecutor is the remotecommand.Executor of the simulated runtime; name is the pod's name (the containers'
// hostname).
type simExecutor struct{}

func (simExecutor) ExecInContainer(ctx context.Context, name string, _ types.UID, _ string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	var sizes chan termSize
	if resize != nil {
		sizes = make(chan termSize)
		go func() {
			defer close(sizes)
			for size := range resize {
				sizes <- termSize{Width: size.Width, Height: size.Height}
			}
		}()
	}
	// An absent stream stays nil: converting a nil interface gives a nil interface.
	code := runSimExec(ctx, name, cmd, in, out, errOut, tty, sizes)
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("error executing command %v, exit code %d", cmd, code), Code: code}
	}
	return nil
}
