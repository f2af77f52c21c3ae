// A node simulator: one Node that binds unscheduled pods to itself and reports them Running and Ready, with a kubelet endpoint for their logs and exec.

package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// FaultLabel is the label that makes the simulator fail a pod, the same
// switch as the edgecd Kubernetes API emulator's: "crashloop" keeps its
// containers waiting in CrashLoopBackOff (Running, not Ready; a pod that
// does not restart fails), "stuck" leaves it Pending. An image whose name
// contains "fail" acts as "crashloop".
const FaultLabel = "emulator.edgecd.io/fault"

type nodeSim struct {
	client kubernetes.Interface
	node   string
	queue  workqueue.TypedRateLimitingInterface[string]
	lister func(key string) (*corev1.Pod, bool, error)
	nextIP atomic.Uint32
}

// registerNode creates the Node (idempotently) and reports it Ready.
func registerNode(ctx context.Context, client kubernetes.Interface, name string, kubeletPort int) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("32"),
		corev1.ResourceMemory:           resource.MustParse("128Gi"),
		corev1.ResourcePods:             resource.MustParse("250"),
		corev1.ResourceEphemeralStorage: resource.MustParse("500Gi"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "realkube",
			},
		},
	}
	created, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("registering node %s: %w", name, err)
	}
	now := metav1.Now()
	created.Status = corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "realkube node simulator", LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", LastHeartbeatTime: now, LastTransitionTime: now},
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
			{Type: corev1.NodeHostName, Address: name},
		},
		// Where kube-apiserver reaches the simulator's kubelet endpoint (pods/log, pods/exec).
		DaemonEndpoints: corev1.NodeDaemonEndpoints{
			KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(kubeletPort)},
		},
		NodeInfo: corev1.NodeSystemInfo{
			OperatingSystem:         "linux",
			Architecture:            "amd64",
			KubeletVersion:          "v1.35.4",
			ContainerRuntimeVersion: "realkube://0.1",
		},
	}
	_, err = client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("reporting node %s ready: %w", name, err)
	}
	return nil
}

// runNodeSim registers the node, serves its kubelet endpoint with the given certificate, and handles pods until
// ctx ends.
func runNodeSim(ctx context.Context, client kubernetes.Interface, name, certFile, keyFile string) error {
	factory := informers.NewSharedInformerFactory(client, 0)
	podInformer := factory.Core().V1().Pods().Informer()
	sim := &nodeSim{
		client: client,
		node:   name,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](50*time.Millisecond, 5*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodesim"},
		),
	}
	sim.lister = func(key string) (*corev1.Pod, bool, error) {
		obj, exists, err := podInformer.GetIndexer().GetByKey(key)
		if err != nil || !exists {
			return nil, exists, err
		}
		return obj.(*corev1.Pod), true, nil
	}
	kubeletPort, err := startKubelet(ctx, certFile, keyFile, &kubelet{node: name, lister: sim.lister})
	if err != nil {
		return err
	}
	if err := registerNode(ctx, client, name, kubeletPort); err != nil {
		return err
	}
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			sim.queue.Add(key)
		}
	}
	if _, err := podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer sim.queue.ShutDown()
	for i := 0; i < 2; i++ {
		go wait.UntilWithContext(ctx, sim.worker, time.Second)
	}
	<-ctx.Done()
	factory.Shutdown()
	return nil
}

func (s *nodeSim) worker(ctx context.Context) {
	for {
		key, shutdown := s.queue.Get()
		if shutdown {
			return
		}
		err := s.sync(ctx, key)
		if err != nil && ctx.Err() == nil {
			if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
				klog.InfoS("node simulator: retrying", "pod", key, "err", err)
			}
			s.queue.AddRateLimited(key)
		} else {
			s.queue.Forget(key)
		}
		s.queue.Done(key)
	}
}

func fault(pod *corev1.Pod) string {
	if f := pod.Labels[FaultLabel]; f != "" {
		return f
	}
	for _, c := range pod.Spec.Containers {
		if strings.Contains(c.Image, "fail") {
			return "crashloop"
		}
	}
	return ""
}

func (s *nodeSim) sync(ctx context.Context, key string) error {
	pod, exists, err := s.lister(key)
	if err != nil || !exists {
		return err
	}
	pods := s.client.CoreV1().Pods(pod.Namespace)
	switch {
	case pod.DeletionTimestamp != nil:
		// What the kubelet does once the containers are stopped.
		if pod.Spec.NodeName != "" && pod.Spec.NodeName != s.node {
			return nil
		}
		zero := int64(0)
		err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: &zero,
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	case fault(pod) == "stuck":
		return nil
	case pod.Spec.NodeName == "":
		if pod.Spec.SchedulerName != "" && pod.Spec.SchedulerName != corev1.DefaultSchedulerName {
			return nil
		}
		binding := &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: s.node},
		}
		err := pods.Bind(ctx, binding, metav1.CreateOptions{})
		if apierrors.IsConflict(err) {
			return nil
		}
		return err
	case pod.Spec.NodeName != s.node:
		return nil
	case pod.Status.Phase == corev1.PodPending || pod.Status.Phase == "":
		updated := pod.DeepCopy()
		s.start(updated)
		_, err := pods.UpdateStatus(ctx, updated, metav1.UpdateOptions{})
		return err
	}
	return nil
}

// start fills in the status a kubelet reports once the pod's containers run
// (or, for a pod that does not restart, have run to completion).
func (s *nodeSim) start(pod *corev1.Pod) {
	now := metav1.Now()
	failing := fault(pod) == "crashloop"
	finishes := pod.Spec.RestartPolicy == corev1.RestartPolicyNever || pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure
	n := s.nextIP.Add(1)
	ip := fmt.Sprintf("10.244.%d.%d", (n/250)%250, n%250+2)
	pod.Status.HostIP = "127.0.0.1"
	pod.Status.HostIPs = []corev1.HostIP{{IP: "127.0.0.1"}}
	pod.Status.PodIP = ip
	pod.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	pod.Status.StartTime = &now
	pod.Status.InitContainerStatuses = nil
	for _, c := range pod.Spec.InitContainers {
		pod.Status.InitContainerStatuses = append(pod.Status.InitContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "realkube://" + c.Image, ContainerID: fmt.Sprintf("realkube://%s-%s", pod.UID, c.Name),
			Ready: true,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now}},
		})
	}
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		status := corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "realkube://" + c.Image, ContainerID: fmt.Sprintf("realkube://%s-%s", pod.UID, c.Name),
		}
		switch {
		case failing && !finishes:
			status.RestartCount = 3
			status.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off restarting failed container " + c.Name + " (realkube fault injection)"}}
			status.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", StartedAt: now, FinishedAt: now}}
		case failing:
			status.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", StartedAt: now, FinishedAt: now}}
		case finishes:
			status.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now}}
		default:
			started := true
			status.Ready = true
			status.Started = &started
			status.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
		}
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, status)
	}
	ready := corev1.ConditionTrue
	switch {
	case failing && !finishes:
		pod.Status.Phase = corev1.PodRunning
		ready = corev1.ConditionFalse
	case failing:
		pod.Status.Phase = corev1.PodFailed
		ready = corev1.ConditionFalse
	case finishes:
		pod.Status.Phase = corev1.PodSucceeded
		ready = corev1.ConditionFalse
	default:
		pod.Status.Phase = corev1.PodRunning
	}
	pod.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: ready, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: ready, LastTransitionTime: now},
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
}
