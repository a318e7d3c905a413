package chart

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

func rulesFile(t testing.TB) string {
	return filepath.Join(chartDir(t), "files", "prometheus", "rules.yaml")
}

func dashboardFile(t testing.TB) string {
	return filepath.Join(chartDir(t), "files", "grafana", "ikegate.json")
}

// promtool is the one hack/install-promtool.sh unpacks; `make test` runs it first.
func promtool(t testing.TB, args ...string) string {
	t.Helper()
	bin := filepath.Join(repoRoot(t), "bin", "promtool")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s not found (run `make promtool` or `make test`): %v", bin, err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func TestAlertRules(t *testing.T) {
	promtool(t, "check", "rules", rulesFile(t))
	promtool(t, "test", "rules", filepath.Join(repoRoot(t), "test", "chart", "testdata", "rules_test.yaml"))
}

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func readRules(t testing.TB) ruleFile {
	t.Helper()
	data, err := os.ReadFile(rulesFile(t))
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(data, &rf); err != nil {
		t.Fatal(err)
	}
	return rf
}

// Every alert has a runbook line and a runbook_url whose section exists in
// docs/alerts.md, and selects only metrics the binaries export.
func TestAlertRulesRunbooksAndMetrics(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "alerts.md"))
	if err != nil {
		t.Fatal(err)
	}
	exported := exportedMetrics(t)
	alerts := 0
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			alerts++
			if r.Annotations["runbook"] == "" {
				t.Errorf("%s has no runbook annotation", r.Alert)
			}
			anchor := "#" + strings.ToLower(r.Alert)
			if !strings.HasSuffix(r.Annotations["runbook_url"], "/docs/alerts.md"+anchor) {
				t.Errorf("%s: runbook_url %q does not point at docs/alerts.md%s", r.Alert, r.Annotations["runbook_url"], anchor)
			}
			if !bytes.Contains(doc, []byte("\n## "+r.Alert+"\n")) {
				t.Errorf("docs/alerts.md has no section ## %s", r.Alert)
			}
			for _, n := range metricNames(r.Expr) {
				if !isExported(exported, n) {
					t.Errorf("%s uses %s, which neither the agent nor the manager exports", r.Alert, n)
				}
			}
		}
	}
	if alerts < 8 {
		t.Errorf("%d alerts, want the 8 of rules.yaml at least", alerts)
	}
}

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\)$`)

// dashboardQueries returns every PromQL expression of the dashboard by where
// it is: the panels' targets and the query variables' label_values().
func dashboardQueries(t testing.TB) map[string]string {
	t.Helper()
	data, err := os.ReadFile(dashboardFile(t))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	q := map[string]string{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for i, tg := range p.Targets {
			q[fmt.Sprintf("panel %q query %d", p.Title, i)] = tg.Expr
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m, _ := v.Query.(map[string]any)
		s, _ := m["query"].(string)
		lv := labelValuesRE.FindStringSubmatch(s)
		if lv == nil {
			t.Errorf("variable %s: query %q is not label_values(SELECTOR, LABEL)", v.Name, s)
			continue
		}
		q["variable "+v.Name] = lv[1]
	}
	return q
}

// The dashboard's queries parse (promtool checks them as recording rules,
// with Grafana's variables given values) and select only metrics that the
// agent and the manager export.
func TestDashboardQueries(t *testing.T) {
	queries := dashboardQueries(t)
	exported := exportedMetrics(t)
	vars := strings.NewReplacer("$__rate_interval", "5m", "${datasource}", "prom")
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rule
	for where, expr := range queries {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s selects no metric: %s", where, expr)
		}
		for _, n := range names {
			if !isExported(exported, n) {
				t.Errorf("%s uses %s, which neither the agent nor the manager exports", where, n)
			}
		}
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query%d", len(rules)), Expr: vars.Replace(expr)})
	}
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(f, out, 0o600); err != nil {
		t.Fatal(err)
	}
	promtool(t, "check", "rules", f)
}

// The optional monitoring objects: off by default, and when on, a
// PodMonitor that selects the gateway pods' metrics port and sets the
// gateway label, the rule file unchanged in a PrometheusRule, and the
// dashboard in a ConfigMap carrying the Grafana sidecar's label.
func TestMonitoringObjects(t *testing.T) {
	for _, kind := range []string{"PodMonitor", "PrometheusRule", "ConfigMap"} {
		if got := ofKind(helmTemplate(t, releaseName, namespace), kind); len(got) != 0 {
			t.Errorf("%s rendered by default: %v", kind, keys(got))
		}
	}
	objs := helmTemplate(t, releaseName, namespace,
		"metrics.podMonitor.enabled=true", "metrics.podMonitor.labels.release=prometheus",
		"metrics.prometheusRule.enabled=true", "metrics.prometheusRule.labels.release=prometheus",
		"grafana.dashboard.enabled=true")

	var pm monitoringv1.PodMonitor
	convertStrict(t, one(t, objs, "PodMonitor"), &pm)
	if pm.Labels["release"] != "prometheus" || !pm.Spec.NamespaceSelector.Any {
		t.Errorf("PodMonitor labels %v, namespaceSelector %+v", pm.Labels, pm.Spec.NamespaceSelector)
	}
	sel := pm.Spec.Selector.MatchExpressions
	if len(sel) != 1 || sel[0].Key != v1alpha1.LabelGateway || sel[0].Operator != "Exists" {
		t.Errorf("PodMonitor selector %+v, want %s Exists", pm.Spec.Selector, v1alpha1.LabelGateway)
	}
	// One endpoint, for gateway pods on the pod network (the agent's named
	// port): host-network agents listen on the node's loopback address only.
	eps := pm.Spec.PodMetricsEndpoints
	if len(eps) != 1 || eps[0].Port == nil || *eps[0].Port != "metrics" {
		t.Fatalf("podMetricsEndpoints %+v", eps)
	}
	gwLabel := "__meta_kubernetes_pod_label_" + regexp.MustCompile(`[^a-zA-Z0-9_]`).ReplaceAllString(v1alpha1.LabelGateway, "_")
	for i, ep := range eps {
		if ep.Path != "/metrics" {
			t.Errorf("endpoint %d: path %q", i, ep.Path)
		}
		setsGateway := false
		for _, rc := range ep.RelabelConfigs {
			if len(rc.SourceLabels) == 1 && string(rc.SourceLabels[0]) == gwLabel && rc.TargetLabel == "gateway" {
				setsGateway = true
			}
		}
		if !setsGateway {
			t.Errorf("endpoint %d: relabelings %+v do not copy %s to gateway", i, ep.RelabelConfigs, gwLabel)
		}
	}
	var pr monitoringv1.PrometheusRule
	convertStrict(t, one(t, objs, "PrometheusRule"), &pr)
	want, err := os.ReadFile(rulesFile(t))
	if err != nil {
		t.Fatal(err)
	}
	var wantSpec monitoringv1.PrometheusRuleSpec
	if err := yaml.UnmarshalStrict(want, &wantSpec); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantSpec, pr.Spec); diff != "" {
		t.Errorf("PrometheusRule differs from files/prometheus/rules.yaml:\n%s", diff)
	}

	cm := one(t, objs, "ConfigMap")
	if cm.GetLabels()["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap labels %v lack grafana_dashboard=1", cm.GetLabels())
	}
	js, err := os.ReadFile(dashboardFile(t))
	if err != nil {
		t.Fatal(err)
	}
	got := field(t, cm, "data", "ikegate.json")
	if strings.TrimSpace(fmt.Sprint(got)) != strings.TrimSpace(string(js)) {
		t.Errorf("ConfigMap data differs from files/grafana/ikegate.json")
	}
}
