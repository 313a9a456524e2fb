// Command validate renders every kustomize overlay under deploy/k8s/overlays in-process (no
// kubectl, no network, no plugins) and checks what it renders: each object is decoded strictly
// into its Kubernetes API type from k8s.io/api (unknown or duplicate fields, wrong types, unknown
// kinds are errors), then held to the project's own rules (rules.go).
//
//	go run . [-k8s ../] [-json] [-print overlay]
//
// Exit status 0 when every overlay passes, 1 when any problem was found, 2 on bad usage. With
// -json it prints, per overlay, the objects and each Deployment's resolved environment, which
// test/unit/k8s.test.ts holds against src/config.ts.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Report is what one overlay rendered and what is wrong with it.
type Report struct {
	Overlay     string        `json:"overlay"`
	Objects     []string      `json:"objects"`
	Deployments []Environment `json:"deployments"`
	// Secrets referenced but not rendered: created in the cluster by its operator (README.md);
	// their keys are taken from secrets.example.env.
	ExternalSecrets []string `json:"externalSecrets"`
	// Pod metrics the autoscalers read: the app must export each (test/unit/k8s.test.ts).
	PodMetrics []string `json:"podMetrics"`
	Problems   []string `json:"problems"`
}

// Environment is the environment a Deployment's container starts with, resolved from its
// ConfigMaps, Secrets (the example file's values) and literal values.
type Environment struct {
	Deployment string            `json:"deployment"`
	Container  string            `json:"container"`
	Env        map[string]string `json:"env"`
}

func main() {
	k8sDir := flag.String("k8s", "..", "the deploy/k8s directory (base/, overlays/, secrets.example.env)")
	asJSON := flag.Bool("json", false, "print the reports as JSON on stdout")
	printOverlay := flag.String("print", "", "print this overlay's rendered YAML on stdout instead of checking")
	flag.Parse()

	if *printOverlay != "" {
		yaml, err := renderYAML(filepath.Join(*k8sDir, "overlays", *printOverlay))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Stdout.Write(yaml)
		return
	}

	overlays, err := filepath.Glob(filepath.Join(*k8sDir, "overlays", "*", "kustomization.yaml"))
	if err != nil || len(overlays) == 0 {
		fmt.Fprintf(os.Stderr, "no overlays found under %s/overlays\n", *k8sDir)
		os.Exit(2)
	}
	sort.Strings(overlays)
	example, err := readEnvFile(filepath.Join(*k8sDir, "secrets.example.env"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	reports := make([]Report, 0, len(overlays))
	failed := false
	for _, file := range overlays {
		dir := filepath.Dir(file)
		report := checkOverlay(filepath.Base(dir), dir, example)
		if len(report.Problems) > 0 {
			failed = true
		}
		for _, p := range report.Problems {
			fmt.Fprintf(os.Stderr, "%s: %s\n", report.Overlay, p)
		}
		if len(report.Problems) == 0 {
			fmt.Fprintf(os.Stderr, "%s: %d objects, valid\n", report.Overlay, len(report.Objects))
		}
		reports = append(reports, report)
	}
	if *asJSON {
		out, _ := json.MarshalIndent(reports, "", "  ")
		os.Stdout.Write(append(out, '\n'))
	}
	if failed {
		os.Exit(1)
	}
}

// checkOverlay renders one overlay, decodes every object and applies the rules.
func checkOverlay(name, dir string, example map[string]string) Report {
	report := Report{Overlay: name, Objects: []string{}, Deployments: []Environment{}, ExternalSecrets: []string{}, PodMetrics: []string{}, Problems: []string{}}
	objects, err := render(dir)
	if err != nil {
		report.Problems = append(report.Problems, err.Error())
		return report
	}
	set := &objectSet{}
	for _, o := range objects {
		report.Objects = append(report.Objects, o.id)
		if err := set.add(o); err != nil {
			report.Problems = append(report.Problems, fmt.Sprintf("%s: %v", o.id, err))
		}
	}
	if len(report.Problems) > 0 {
		return report
	}
	r := &rules{set: set, example: example}
	r.check()
	report.Problems = append(report.Problems, r.problems...)
	report.Deployments = append(report.Deployments, r.environments...)
	report.ExternalSecrets = append(report.ExternalSecrets, r.externalSecrets()...)
	report.PodMetrics = append(report.PodMetrics, set.podMetrics()...)
	return report
}
