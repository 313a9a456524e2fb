package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// rendered is one object as kustomize rendered it, as JSON.
type rendered struct {
	id   string // kind/namespace/name
	kind string
	api  string // apiVersion
	json []byte
}

// newKustomizer renders from the disk alone: files only under the kustomization's root (bases are
// kustomizations of their own), no plugins, no remote bases.
func newKustomizer() *krusty.Kustomizer {
	opts := krusty.MakeDefaultOptions()
	return krusty.MakeKustomizer(opts)
}

func render(dir string) ([]rendered, error) {
	resources, err := newKustomizer().Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize: %w", err)
	}
	var out []rendered
	for _, r := range resources.Resources() {
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.CurId(), err)
		}
		gvk := r.GetGvk()
		api := gvk.Version
		if gvk.Group != "" {
			api = gvk.Group + "/" + gvk.Version
		}
		out = append(out, rendered{
			id:   fmt.Sprintf("%s/%s/%s", gvk.Kind, r.GetNamespace(), r.GetName()),
			kind: gvk.Kind,
			api:  api,
			json: data,
		})
	}
	return out, nil
}

func renderYAML(dir string) ([]byte, error) {
	resources, err := newKustomizer().Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize: %w", err)
	}
	return resources.AsYaml()
}

// objectSet holds the decoded objects of one overlay, by type.
type objectSet struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	configMaps  []*corev1.ConfigMap
	secrets     []*corev1.Secret
	accounts    []*corev1.ServiceAccount
	budgets     []*policyv1.PodDisruptionBudget
	autoscalers []*autoscalingv2.HorizontalPodAutoscaler
	policies    []*networkingv1.NetworkPolicy
}

// add decodes one object into the type its apiVersion and kind name. Only the kinds the project
// ships are known: anything else (a typo in kind, an apiVersion that was removed, an operator's
// resource) is an error rather than a pass.
func (s *objectSet) add(o rendered) error {
	var target any
	switch o.api + " " + o.kind {
	case "apps/v1 Deployment":
		d := &appsv1.Deployment{}
		s.deployments, target = append(s.deployments, d), d
	case "v1 Service":
		v := &corev1.Service{}
		s.services, target = append(s.services, v), v
	case "v1 ConfigMap":
		v := &corev1.ConfigMap{}
		s.configMaps, target = append(s.configMaps, v), v
	case "v1 Secret":
		v := &corev1.Secret{}
		s.secrets, target = append(s.secrets, v), v
	case "v1 ServiceAccount":
		v := &corev1.ServiceAccount{}
		s.accounts, target = append(s.accounts, v), v
	case "policy/v1 PodDisruptionBudget":
		v := &policyv1.PodDisruptionBudget{}
		s.budgets, target = append(s.budgets, v), v
	case "autoscaling/v2 HorizontalPodAutoscaler":
		v := &autoscalingv2.HorizontalPodAutoscaler{}
		s.autoscalers, target = append(s.autoscalers, v), v
	case "networking.k8s.io/v1 NetworkPolicy":
		v := &networkingv1.NetworkPolicy{}
		s.policies, target = append(s.policies, v), v
	default:
		return fmt.Errorf("%s %s is not a kind this project ships (known: Deployment, Service, ConfigMap, Secret, ServiceAccount, PodDisruptionBudget, HorizontalPodAutoscaler, NetworkPolicy)", o.api, o.kind)
	}
	return decodeStrict(o.json, target)
}

// decodeStrict decodes as the API server's strict field validation does: field names are
// case-sensitive, and unknown or duplicate fields are errors, as are values of the wrong type
// (a quantity that does not parse, a string where a number belongs).
func decodeStrict(data []byte, target any) error {
	strict, err := sigsjson.UnmarshalStrict(data, target, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// checkName applies the API server's rule for object names (a DNS subdomain; a DNS label for
// Services).
func checkName(kind, name string) []string {
	if kind == "Service" {
		return validation.IsDNS1035Label(name)
	}
	return validation.IsDNS1123Subdomain(name)
}

// readEnvFile reads KEY=value lines, as kubectl create secret --from-env-file does.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	values := map[string]string{}
	scanner := bufio.NewScanner(f)
	for n := 1; scanner.Scan(); n++ {
		line := strings.TrimSpace(scanner.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("%s:%d: expected KEY=value", path, n)
		}
		values[key] = value
	}
	return values, scanner.Err()
}

// podMetrics lists, once each, the pod metrics the autoscalers read.
func (s *objectSet) podMetrics() []string {
	seen := map[string]bool{}
	var names []string
	for _, h := range s.autoscalers {
		for _, m := range h.Spec.Metrics {
			if m.Pods != nil && !seen[m.Pods.Metric.Name] {
				seen[m.Pods.Metric.Name] = true
				names = append(names, m.Pods.Metric.Name)
			}
		}
	}
	return names
}
