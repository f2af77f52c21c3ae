// Command realkube runs a real Kubernetes control plane on loopback for tests:
// embedded etcd, kube-apiserver and kube-controller-manager in one process,
// built from the Kubernetes project's own Go modules, plus a node simulator
// that binds pods to one Node and reports them Running and Ready.
//
// It writes an admin kubeconfig, prints the single line "ready" on stdout
// once the API server answers /readyz and the node is registered, and exits
// on SIGTERM, SIGINT or when its stdin closes (so that it dies with the
// process that started it).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

type config struct {
	dir             string
	kubeconfig      string
	port            int
	etcdPort        int
	etcdPeerPort    int
	controllers     bool
	node            string
	exitOnStdinEOF  bool
	readyTimeout    time.Duration
	apiserverFlags  stringList
	controllerFlags stringList
}

func main() {
	var c config
	fs := flag.NewFlagSet("realkube", flag.ExitOnError)
	fs.StringVar(&c.dir, "dir", "", "data directory: etcd data, certificates, keys (required)")
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "where to write the admin kubeconfig (default DIR/kubeconfig)")
	fs.IntVar(&c.port, "port", 0, "kube-apiserver port on 127.0.0.1 (0: a free one)")
	fs.IntVar(&c.etcdPort, "etcd-port", 0, "etcd client port on 127.0.0.1 (0: a free one)")
	fs.IntVar(&c.etcdPeerPort, "etcd-peer-port", 0, "etcd peer port on 127.0.0.1 (0: a free one)")
	fs.BoolVar(&c.controllers, "controllers", true, "run kube-controller-manager")
	fs.StringVar(&c.node, "node", "realkube-node", "name of the simulated node (empty: no node simulator)")
	fs.BoolVar(&c.exitOnStdinEOF, "exit-on-stdin-eof", true, "exit when stdin closes")
	fs.DurationVar(&c.readyTimeout, "ready-timeout", 3*time.Minute, "how long to wait for the control plane to be ready")
	fs.Var(&c.apiserverFlags, "apiserver-flag", "an extra kube-apiserver flag, e.g. --feature-gates=X=true (repeatable)")
	fs.Var(&c.controllerFlags, "controller-manager-flag", "an extra kube-controller-manager flag (repeatable)")
	klog.InitFlags(fs)
	_ = fs.Parse(os.Args[1:])
	if c.dir == "" {
		fmt.Fprintln(os.Stderr, "realkube: --dir is required")
		os.Exit(2)
	}
	if c.kubeconfig == "" {
		c.kubeconfig = filepath.Join(c.dir, "kubeconfig")
	}
	if err := run(c); err != nil {
		klog.Flush()
		fmt.Fprintf(os.Stderr, "realkube: %v\n", err)
		os.Exit(1)
	}
	klog.Flush()
}

func run(c config) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if c.exitOnStdinEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			klog.InfoS("realkube: stdin closed, shutting down")
			stop()
		}()
	}
	// Past this deadline after a shutdown request, exit regardless.
	go func() {
		<-ctx.Done()
		time.Sleep(20 * time.Second)
		fmt.Fprintln(os.Stderr, "realkube: shutdown took more than 20s, exiting")
		os.Exit(0)
	}()

	started := time.Now()
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	p, err := newPKI(filepath.Join(c.dir, "pki"))
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}

	etcdPort, etcdPeerPort := c.etcdPort, c.etcdPeerPort
	if etcdPort == 0 {
		if etcdPort, err = freePort(); err != nil {
			return err
		}
	}
	if etcdPeerPort == 0 {
		if etcdPeerPort, err = freePort(); err != nil {
			return err
		}
	}
	etcd, etcdURL, err := startEtcd(c.dir, etcdPort, etcdPeerPort)
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer etcd.Close()
	klog.InfoS("realkube: etcd ready", "url", etcdURL, "after", time.Since(started))

	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", c.port))
	if err != nil {
		return fmt.Errorf("kube-apiserver listener: %w", err)
	}
	url := fmt.Sprintf("https://127.0.0.1:%d", listener.Addr().(*net.TCPAddr).Port)
	apiserverCtx, stopAPIServer := context.WithCancel(context.Background())
	defer stopAPIServer()
	apiserverDone, err := startAPIServer(apiserverCtx, p, etcdURL, listener, c.apiserverFlags)
	if err != nil {
		return err
	}
	// Writes go to the apiserver until the end; it stops after the others.
	defer func() {
		stopAPIServer()
		select {
		case <-apiserverDone:
		case <-time.After(10 * time.Second):
		}
	}()
	if err := p.writeKubeconfig(c.kubeconfig, url); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return err
	}
	restConfig.QPS, restConfig.Burst = 200, 400
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	readyCtx, cancelReady := context.WithTimeout(ctx, c.readyTimeout)
	defer cancelReady()
	if err := waitReadyz(readyCtx, client, apiserverDone); err != nil {
		return err
	}
	klog.InfoS("realkube: kube-apiserver ready", "url", url, "after", time.Since(started))

	failed := make(chan error, 2)
	if c.controllers {
		go func() {
			if err := runControllerManager(ctx, p, c.kubeconfig, c.controllerFlags); err != nil {
				failed <- fmt.Errorf("kube-controller-manager: %w", err)
			}
		}()
	}
	if c.node != "" {
		go func() {
			if err := runNodeSim(ctx, client, c.node, p.serverCert, p.serverKey); err != nil {
				failed <- fmt.Errorf("node simulator: %w", err)
			}
		}()
	}
	if err := waitSettled(readyCtx, client, c, failed); err != nil {
		return err
	}
	klog.InfoS("realkube: ready", "kubeconfig", c.kubeconfig, "after", time.Since(started))
	fmt.Println("ready")

	select {
	case <-ctx.Done():
		klog.InfoS("realkube: shutting down")
		return nil
	case err := <-apiserverDone:
		return fmt.Errorf("kube-apiserver stopped: %v", err)
	case err := <-failed:
		return err
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReadyz polls /readyz until it answers ok.
func waitReadyz(ctx context.Context, client kubernetes.Interface, apiserverDone <-chan error) error {
	var last error
	for {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) == "ok" {
			return nil
		}
		last = err
		select {
		case err := <-apiserverDone:
			return fmt.Errorf("kube-apiserver stopped before it was ready: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready: %v (last: %v)", ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitSettled waits for what tests expect of a fresh cluster: the node
// Ready, and (with the controllers) the default service account, without
// which pods cannot be created in the default namespace.
func waitSettled(ctx context.Context, client kubernetes.Interface, c config, failed <-chan error) error {
	for {
		ok := true
		if c.node != "" {
			node, err := client.CoreV1().Nodes().Get(ctx, c.node, metav1.GetOptions{})
			ok = err == nil && nodeReady(node)
		}
		if ok && c.controllers {
			_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
			ok = err == nil
		}
		if ok {
			return nil
		}
		select {
		case err := <-failed:
			return err
		case <-ctx.Done():
			return errors.New("the node or the default service account did not appear in time")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func nodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
