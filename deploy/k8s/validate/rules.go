package main

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The replica's own endpoints (src/http/server.ts).
const (
	readinessPath = "/readyz"
	livenessPath  = "/healthz"
	// Time left, beyond preStop and the replica's own shutdown deadline, for the process to exit
	// after its deadline timer fires, before the kubelet sends SIGKILL.
	exitMarginMs = 5000
	// A scale-down must wait at least this long: each replica leaving rebalances the groups.
	minScaleDownWindowSeconds = 300
)

// rules checks one overlay's decoded objects against each other and against the replica's needs.
type rules struct {
	set          *objectSet
	example      map[string]string
	problems     []string
	environments []Environment
	external     map[string]bool
}

func (r *rules) fail(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func (r *rules) check() {
	r.external = map[string]bool{}
	r.checkMetadata()
	for _, d := range r.set.deployments {
		r.checkDeployment(d)
	}
	r.checkServices()
	r.checkBudgets()
	r.checkAutoscalers()
	r.checkNetworkPolicies()
}

func (r *rules) externalSecrets() []string {
	names := make([]string, 0, len(r.external))
	for name := range r.external {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Every object: a valid name and labels, and a namespace (an overlay decides where it runs).
func (r *rules) checkMetadata() {
	each := func(kind string, m metav1.ObjectMeta) {
		for _, msg := range checkName(kind, m.Name) {
			r.fail("%s %q: name: %s", kind, m.Name, msg)
		}
		if m.Namespace == "" {
			r.fail("%s %q: no namespace (the overlay sets one)", kind, m.Name)
		}
		for k, v := range m.Labels {
			for _, msg := range append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...) {
				r.fail("%s %q: label %s=%s: %s", kind, m.Name, k, v, msg)
			}
		}
	}
	for _, o := range r.set.deployments {
		each("Deployment", o.ObjectMeta)
	}
	for _, o := range r.set.services {
		each("Service", o.ObjectMeta)
	}
	for _, o := range r.set.configMaps {
		each("ConfigMap", o.ObjectMeta)
	}
	for _, o := range r.set.secrets {
		each("Secret", o.ObjectMeta)
	}
	for _, o := range r.set.accounts {
		each("ServiceAccount", o.ObjectMeta)
	}
	for _, o := range r.set.budgets {
		each("PodDisruptionBudget", o.ObjectMeta)
	}
	for _, o := range r.set.autoscalers {
		each("HorizontalPodAutoscaler", o.ObjectMeta)
	}
	for _, o := range r.set.policies {
		each("NetworkPolicy", o.ObjectMeta)
	}
}

func (r *rules) checkDeployment(d *appsv1.Deployment) {
	where := fmt.Sprintf("Deployment %q", d.Name)
	spec := d.Spec.Template.Spec
	if d.Spec.Selector == nil {
		r.fail("%s: no selector", where)
	} else if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil {
		r.fail("%s: selector: %v", where, err)
	} else if sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		r.fail("%s: the selector does not select the pod template's labels", where)
	}
	if spec.ServiceAccountName != "" && !r.hasAccount(spec.ServiceAccountName) {
		r.fail("%s: service account %q is not rendered", where, spec.ServiceAccountName)
	}
	if len(spec.Containers) != 1 {
		r.fail("%s: expected one container (the replica), found %d", where, len(spec.Containers))
		return
	}
	c := spec.Containers[0]
	where = fmt.Sprintf("%s container %q", where, c.Name)
	env := r.resolveEnv(where, d, c)
	r.environments = append(r.environments, Environment{Deployment: d.Name, Container: c.Name, Env: env})

	if c.Image == "" || !(strings.Contains(c.Image, "@") || strings.Contains(lastSegment(c.Image), ":")) {
		r.fail("%s: image %q has no tag or digest", where, c.Image)
	} else if strings.HasSuffix(c.Image, ":latest") {
		r.fail("%s: image %q: a moving tag cannot be rolled back", where, c.Image)
	}

	// The port the replica listens on, and the probes on it.
	port, err := strconv.Atoi(env["PORT"])
	if err != nil {
		r.fail("%s: PORT is not set to a number (%q): probes cannot be checked", where, env["PORT"])
	} else if !hasContainerPort(c, port) {
		r.fail("%s: PORT=%d is not one of the container's ports", where, port)
	}
	probe := func(name string, p *corev1.Probe, path string, required bool) {
		if p == nil {
			if required {
				r.fail("%s: no %s probe", where, name)
			}
			return
		}
		if p.HTTPGet == nil {
			r.fail("%s: the %s probe is not an HTTP GET of %s", where, name, path)
			return
		}
		if p.HTTPGet.Path != path {
			r.fail("%s: the %s probe asks %q, the replica answers it on %s", where, name, p.HTTPGet.Path, path)
		}
		if got, ok := resolvePort(c, p.HTTPGet.Port); !ok || got != port {
			r.fail("%s: the %s probe's port %s is not the replica's PORT %d", where, name, p.HTTPGet.Port.String(), port)
		}
	}
	probe("readiness", c.ReadinessProbe, readinessPath, true)
	probe("liveness", c.LivenessProbe, livenessPath, true)
	probe("startup", c.StartupProbe, livenessPath, false)

	// Resources: the scheduler places the replica by its requests, and memory is capped.
	req, lim := c.Resources.Requests, c.Resources.Limits
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := req[name]; !ok || q.IsZero() {
			r.fail("%s: no %s request", where, name)
		}
	}
	if q, ok := lim[corev1.ResourceMemory]; !ok {
		r.fail("%s: no memory limit", where)
	} else if q.Cmp(req[corev1.ResourceMemory]) < 0 {
		r.fail("%s: memory limit %s below its request %s", where, q.String(), req.Memory().String())
	}

	// Shutdown: the pod is given longer than preStop plus the replica's own deadline.
	preStopMs := int64(0)
	switch {
	case c.Lifecycle == nil || c.Lifecycle.PreStop == nil:
		r.fail("%s: no preStop: the endpoint would still receive connections after the listener closed", where)
	case c.Lifecycle.PreStop.Sleep != nil:
		preStopMs = c.Lifecycle.PreStop.Sleep.Seconds * 1000
	default:
		r.fail("%s: preStop is not a sleep action", where)
	}
	shutdownMs, err := strconv.ParseInt(env["SHUTDOWN_TIMEOUT_MS"], 10, 64)
	if err != nil {
		r.fail("%s: SHUTDOWN_TIMEOUT_MS is not set explicitly (%q): the grace period cannot be checked against it", where, env["SHUTDOWN_TIMEOUT_MS"])
	} else if spec.TerminationGracePeriodSeconds == nil {
		r.fail("%s: no terminationGracePeriodSeconds (the default 30 s is not chosen)", where)
	} else if grace := *spec.TerminationGracePeriodSeconds * 1000; grace < preStopMs+shutdownMs+exitMarginMs {
		r.fail("%s: terminationGracePeriodSeconds %d s is less than preStop %d ms + SHUTDOWN_TIMEOUT_MS %d ms + %d ms to exit", where, grace/1000, preStopMs, shutdownMs, exitMarginMs)
	}

	// Least privilege: the image's non-root user, nothing written outside its volumes.
	nonRoot := spec.SecurityContext != nil && spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot
	sc := c.SecurityContext
	if sc != nil && sc.RunAsNonRoot != nil {
		nonRoot = *sc.RunAsNonRoot
	}
	if !nonRoot {
		r.fail("%s: runAsNonRoot is not true", where)
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		r.fail("%s: allowPrivilegeEscalation is not false", where)
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		r.fail("%s: readOnlyRootFilesystem is not true", where)
	}
}

// resolveEnv builds the container's environment as the kubelet would: envFrom first, then env
// (which wins). Secrets not rendered take their values from secrets.example.env; fieldRef values are
// a sample of what the kubelet puts there.
func (r *rules) resolveEnv(where string, d *appsv1.Deployment, c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm := r.configMap(from.ConfigMapRef.Name)
			if cm == nil {
				r.fail("%s: envFrom ConfigMap %q is not rendered", where, from.ConfigMapRef.Name)
				continue
			}
			for k, v := range cm.Data {
				env[from.Prefix+k] = v
			}
		case from.SecretRef != nil:
			for k, v := range r.secretData(from.SecretRef.Name) {
				env[from.Prefix+k] = v
			}
		}
	}
	seen := map[string]bool{}
	for _, e := range c.Env {
		if seen[e.Name] {
			r.fail("%s: %s is set twice (the last one wins, silently)", where, e.Name)
		}
		seen[e.Name] = true
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm := r.configMap(ref.Name)
			if cm == nil {
				r.fail("%s: %s: ConfigMap %q is not rendered", where, e.Name, ref.Name)
			} else if v, ok := cm.Data[ref.Key]; ok {
				env[e.Name] = v
			} else {
				r.fail("%s: %s: ConfigMap %q has no key %q", where, e.Name, ref.Name, ref.Key)
			}
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if v, ok := r.secretData(ref.Name)[ref.Key]; ok {
				env[e.Name] = v
			} else {
				r.fail("%s: %s: Secret %q has no key %q (nor does secrets.example.env)", where, e.Name, ref.Name, ref.Key)
			}
		case e.ValueFrom.FieldRef != nil:
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.name":
				env[e.Name] = d.Name + "-5d8f7c9b4-x2x7q"
			case "metadata.namespace":
				env[e.Name] = d.Namespace
			default:
				env[e.Name] = "field:" + e.ValueFrom.FieldRef.FieldPath
			}
		default:
			env[e.Name] = ""
		}
	}
	return env
}

func (r *rules) configMap(name string) *corev1.ConfigMap {
	for _, cm := range r.set.configMaps {
		if cm.Name == name {
			return cm
		}
	}
	return nil
}

func (r *rules) secretData(name string) map[string]string {
	for _, s := range r.set.secrets {
		if s.Name == name {
			out := map[string]string{}
			for k, v := range s.StringData {
				out[k] = v
			}
			for k, v := range s.Data {
				out[k] = string(v)
			}
			return out
		}
	}
	r.external[name] = true
	return r.example
}

func (r *rules) hasAccount(name string) bool {
	for _, a := range r.set.accounts {
		if a.Name == name {
			return true
		}
	}
	return false
}

// selected lists the Deployments whose pods a selector picks.
func (r *rules) selected(selector *metav1.LabelSelector) []*appsv1.Deployment {
	if selector == nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return nil
	}
	var out []*appsv1.Deployment
	for _, d := range r.set.deployments {
		if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			out = append(out, d)
		}
	}
	return out
}

// Services: they select replicas, their ports lead to the replica's port, and the port that
// carries subscriptions says it upgrades to WebSocket.
func (r *rules) checkServices() {
	for _, s := range r.set.services {
		where := fmt.Sprintf("Service %q", s.Name)
		targets := r.selected(&metav1.LabelSelector{MatchLabels: s.Spec.Selector})
		if len(s.Spec.Selector) == 0 || len(targets) == 0 {
			r.fail("%s: its selector picks no Deployment's pods", where)
			continue
		}
		for _, p := range s.Spec.Ports {
			for _, d := range targets {
				if _, ok := resolvePort(d.Spec.Template.Spec.Containers[0], p.TargetPort); !ok {
					r.fail("%s: port %q: targetPort %s is not a port of Deployment %q", where, p.Name, p.TargetPort.String(), d.Name)
				}
			}
			if p.Name == "http" && (p.AppProtocol == nil || *p.AppProtocol != "kubernetes.io/ws") {
				r.fail("%s: port %q carries graphql-ws subscriptions: appProtocol should be kubernetes.io/ws", where, p.Name)
			}
		}
	}
}

// Every Deployment has exactly one disruption budget that lets a drain proceed one pod at a time.
func (r *rules) checkBudgets() {
	covered := map[string]int{}
	for _, b := range r.set.budgets {
		targets := r.selected(b.Spec.Selector)
		if len(targets) == 0 {
			r.fail("PodDisruptionBudget %q: its selector picks no Deployment's pods", b.Name)
		}
		for _, d := range targets {
			covered[d.Name]++
		}
		if b.Spec.MinAvailable == nil && b.Spec.MaxUnavailable == nil {
			r.fail("PodDisruptionBudget %q: neither minAvailable nor maxUnavailable", b.Name)
		}
		if b.Spec.MaxUnavailable != nil && b.Spec.MaxUnavailable.Type == intstr.Int && b.Spec.MaxUnavailable.IntVal < 1 {
			r.fail("PodDisruptionBudget %q: maxUnavailable %d blocks every drain", b.Name, b.Spec.MaxUnavailable.IntVal)
		}
	}
	for _, d := range r.set.deployments {
		if covered[d.Name] != 1 {
			r.fail("Deployment %q: covered by %d PodDisruptionBudgets, expected 1", d.Name, covered[d.Name])
		}
	}
}

// Every Deployment has an autoscaler that keeps two replicas at least, scales down slowly, and
// does not grow replicas of one consumer group alone past its partitions (a member without a
// partition idles).
func (r *rules) checkAutoscalers() {
	scaled := map[string]int{}
	for _, h := range r.set.autoscalers {
		where := fmt.Sprintf("HorizontalPodAutoscaler %q", h.Name)
		ref := h.Spec.ScaleTargetRef
		var target *appsv1.Deployment
		for _, d := range r.set.deployments {
			if ref.Kind == "Deployment" && ref.APIVersion == "apps/v1" && ref.Name == d.Name {
				target = d
			}
		}
		if target == nil {
			r.fail("%s: scaleTargetRef %s %s %q is not a rendered Deployment", where, ref.APIVersion, ref.Kind, ref.Name)
			continue
		}
		scaled[target.Name]++
		minReplicas := int32(1)
		if h.Spec.MinReplicas != nil {
			minReplicas = *h.Spec.MinReplicas
		}
		if minReplicas < 2 {
			r.fail("%s: minReplicas %d: one replica leaves nobody to take its clients and partitions", where, minReplicas)
		}
		if h.Spec.MaxReplicas < minReplicas {
			r.fail("%s: maxReplicas %d below minReplicas %d", where, h.Spec.MaxReplicas, minReplicas)
		}
		if len(h.Spec.Metrics) == 0 {
			r.fail("%s: no metrics", where)
		}
		for _, m := range h.Spec.Metrics {
			if m.Resource != nil {
				if _, ok := target.Spec.Template.Spec.Containers[0].Resources.Requests[m.Resource.Name]; !ok && m.Resource.Target.AverageUtilization != nil {
					r.fail("%s: utilization of %s, which the container does not request", where, m.Resource.Name)
				}
			}
		}
		if r.servesClients(target) {
			r.checkConnectionsMetric(where, h, r.envOf(target.Name))
		}
		b := h.Spec.Behavior
		if b == nil || b.ScaleDown == nil || b.ScaleDown.StabilizationWindowSeconds == nil || *b.ScaleDown.StabilizationWindowSeconds < minScaleDownWindowSeconds {
			r.fail("%s: scale-down stabilization window under %d s: each replica leaving rebalances the consumer groups", where, minScaleDownWindowSeconds)
		}
		env := r.envOf(target.Name)
		if role := env["KAFKA_CONSUMERS"]; role == "alerts" || role == "history" {
			partitions, err := strconv.Atoi(env["KAFKA_PARTITIONS"])
			if err == nil && int(h.Spec.MaxReplicas) > partitions {
				r.fail("%s: maxReplicas %d above KAFKA_PARTITIONS %d for replicas of the %s group alone: the extra members would idle", where, h.Spec.MaxReplicas, partitions, role)
			}
		}
		if spec := target.Spec.Replicas; spec != nil && (*spec < minReplicas || *spec > h.Spec.MaxReplicas) {
			r.fail("Deployment %q: replicas %d outside its autoscaler's %d..%d", target.Name, *spec, minReplicas, h.Spec.MaxReplicas)
		}
	}
	for _, d := range r.set.deployments {
		if scaled[d.Name] != 1 {
			r.fail("Deployment %q: scaled by %d HorizontalPodAutoscalers, expected 1", d.Name, scaled[d.Name])
		}
	}
}

// The WebSocket connections a replica holds: the metric the app exports (src/observability/metrics.ts).
const connectionsMetric = "iot_websocket_connections"

// servesClients tells whether a Service sends clients to the Deployment's pods.
func (r *rules) servesClients(d *appsv1.Deployment) bool {
	for _, s := range r.set.services {
		if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			return true
		}
	}
	return false
}

// A replica behind a Service scales on its open WebSockets too, at a target below the count at
// which it refuses them (LIMIT_CONNECTIONS): idle subscribers hardly show in its CPU.
func (r *rules) checkConnectionsMetric(where string, h *autoscalingv2.HorizontalPodAutoscaler, env map[string]string) {
	limit, err := strconv.ParseInt(env["LIMIT_CONNECTIONS"], 10, 64)
	if err != nil {
		r.fail("%s: LIMIT_CONNECTIONS is not set explicitly (%q): the connections target cannot be checked against it", where, env["LIMIT_CONNECTIONS"])
		return
	}
	// Behind the Service, clients arrive through a proxy: every socket has the proxy's address.
	if perAddress, err := strconv.ParseInt(env["LIMIT_CONNECTIONS_PER_ADDRESS"], 10, 64); err != nil || perAddress < limit {
		r.fail("%s: LIMIT_CONNECTIONS_PER_ADDRESS (%q) is below LIMIT_CONNECTIONS %d: every client arrives from the proxy's address, so that limit would cap a proxy pod's sockets on each replica", where, env["LIMIT_CONNECTIONS_PER_ADDRESS"], limit)
	}
	for _, m := range h.Spec.Metrics {
		if m.Type == autoscalingv2.PodsMetricSourceType && m.Pods != nil && m.Pods.Metric.Name == connectionsMetric {
			target := m.Pods.Target.AverageValue
			if target == nil || target.IsZero() {
				r.fail("%s: %s has no average value to hold", where, connectionsMetric)
			} else if target.Value() >= limit {
				r.fail("%s: %s target %s is not below LIMIT_CONNECTIONS %d: replicas would refuse connections before the autoscaler adds one", where, connectionsMetric, target.String(), limit)
			}
			return
		}
	}
	r.fail("%s: takes client traffic but does not scale on %s (CPU does not follow idle subscribers)", where, connectionsMetric)
}

func (r *rules) envOf(deployment string) map[string]string {
	for _, e := range r.environments {
		if e.Deployment == deployment {
			return e.Env
		}
	}
	return map[string]string{}
}

// Network policies: the namespace denies by default; each replica may receive on its port and
// reach DNS, the Kafka brokers, MongoDB and Redis on the ports its configuration names.
func (r *rules) checkNetworkPolicies() {
	defaultDeny := false
	for _, p := range r.set.policies {
		if len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.PodSelector.MatchExpressions) == 0 &&
			len(p.Spec.Ingress) == 0 && len(p.Spec.Egress) == 0 &&
			hasType(p, networkingv1.PolicyTypeIngress) && hasType(p, networkingv1.PolicyTypeEgress) {
			defaultDeny = true
		}
	}
	if !defaultDeny {
		r.fail("no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules)")
	}
	for _, d := range r.set.deployments {
		where := fmt.Sprintf("Deployment %q", d.Name)
		c := d.Spec.Template.Spec.Containers[0]
		env := r.envOf(d.Name)
		if port, err := strconv.Atoi(env["PORT"]); err == nil && !r.ingressAllows(d, c, port) {
			r.fail("%s: no NetworkPolicy lets anything reach its port %d", where, port)
		}
		need := []struct {
			what     string
			port     int
			protocol corev1.Protocol
		}{{"DNS", 53, corev1.ProtocolUDP}}
		for _, broker := range strings.Split(env["KAFKA_BROKERS"], ",") {
			if _, p, ok := strings.Cut(strings.TrimSpace(broker), ":"); ok {
				n, _ := strconv.Atoi(p)
				need = append(need, struct {
					what     string
					port     int
					protocol corev1.Protocol
				}{"Kafka " + broker, n, corev1.ProtocolTCP})
			}
		}
		for _, v := range []struct{ name, scheme string }{{"MONGODB_URL", "mongodb"}, {"REDIS_URL", "redis"}} {
			for _, p := range urlPorts(env[v.name]) {
				need = append(need, struct {
					what     string
					port     int
					protocol corev1.Protocol
				}{v.name, p, corev1.ProtocolTCP})
			}
		}
		for _, n := range need {
			if !r.egressAllows(d, n.port, n.protocol) {
				r.fail("%s: no NetworkPolicy lets it reach %s on %s port %d", where, n.what, n.protocol, n.port)
			}
		}
	}
}

func hasType(p *networkingv1.NetworkPolicy, t networkingv1.PolicyType) bool {
	for _, have := range p.Spec.PolicyTypes {
		if have == t {
			return true
		}
	}
	return false
}

func (r *rules) policiesFor(d *appsv1.Deployment, t networkingv1.PolicyType) []*networkingv1.NetworkPolicy {
	var out []*networkingv1.NetworkPolicy
	for _, p := range r.set.policies {
		sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
		if err == nil && sel.Matches(labels.Set(d.Spec.Template.Labels)) && hasType(p, t) {
			out = append(out, p)
		}
	}
	return out
}

func (r *rules) ingressAllows(d *appsv1.Deployment, c corev1.Container, port int) bool {
	for _, p := range r.policiesFor(d, networkingv1.PolicyTypeIngress) {
		for _, rule := range p.Spec.Ingress {
			if len(rule.Ports) == 0 {
				return true
			}
			for _, rp := range rule.Ports {
				if rp.Port == nil {
					return true
				}
				if got, ok := resolvePort(c, *rp.Port); ok && got == port {
					return true
				}
			}
		}
	}
	return false
}

func (r *rules) egressAllows(d *appsv1.Deployment, port int, protocol corev1.Protocol) bool {
	for _, p := range r.policiesFor(d, networkingv1.PolicyTypeEgress) {
		for _, rule := range p.Spec.Egress {
			if len(rule.Ports) == 0 {
				return true
			}
			for _, rp := range rule.Ports {
				proto := corev1.ProtocolTCP
				if rp.Protocol != nil {
					proto = *rp.Protocol
				}
				if proto != protocol {
					continue
				}
				if rp.Port == nil {
					return true
				}
				if rp.Port.Type == intstr.Int {
					end := rp.Port.IntVal
					if rp.EndPort != nil {
						end = *rp.EndPort
					}
					if int32(port) >= rp.Port.IntVal && int32(port) <= end {
						return true
					}
				}
			}
		}
	}
	return false
}

// resolvePort finds the container port a Service's targetPort or a probe's port names.
func resolvePort(c corev1.Container, p intstr.IntOrString) (int, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return int(cp.ContainerPort), true
		}
	}
	return 0, false
}

func hasContainerPort(c corev1.Container, port int) bool {
	_, ok := resolvePort(c, intstr.FromInt32(int32(port)))
	return ok
}

// urlPorts reads the ports of a mongodb:// (one host or several) or redis:// URL, with the
// scheme's default port where none is given. A mongodb+srv:// URL names no port: the SRV record
// does, and the check is left to the reader.
func urlPorts(raw string) []int {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil
	}
	defaults := map[string]int{"mongodb": 27017, "redis": 6379, "rediss": 6379}
	def, known := defaults[scheme]
	if !known {
		return nil
	}
	if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
		rest = rest[at+1:]
	}
	hosts := strings.SplitN(strings.SplitN(rest, "?", 2)[0], "/", 2)[0]
	var ports []int
	for _, host := range strings.Split(hosts, ",") {
		u, err := url.Parse("x://" + host)
		if err != nil {
			continue
		}
		if p, err := strconv.Atoi(u.Port()); err == nil {
			ports = append(ports, p)
		} else {
			ports = append(ports, def)
		}
	}
	return ports
}

func lastSegment(image string) string {
	return image[strings.LastIndex(image, "/")+1:]
}
