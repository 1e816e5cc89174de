import argparse

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from minop.kubeconfig import ConfigError, merged_kubeconfig
from minop.metrics import Metrics
from minop.settings import SettingsError, add_arguments, from_sources


def parse(argv, env):
    p = argparse.ArgumentParser()
    add_arguments(p)
    return from_sources(p.parse_args(argv), env)


def test_flag_wins_over_environment_which_wins_over_default():
    s = parse(["--workers", "7"], {"MINOP_WORKERS": "3", "MINOP_LOG_FORMAT": "json"})
    assert s.workers == 7 and s.log_format == "json"
    assert parse([], {}).workers == 8


def test_namespaces_from_list_flag_or_env_and_all_namespaces():
    assert parse(["-n", "a,b", "-n", "c"], {}).namespaces == ("a", "b", "c")
    assert parse([], {"MINOP_NAMESPACE": "x, y"}).namespaces == ("x", "y")
    assert parse(["-A"], {"MINOP_NAMESPACE": "x"}).namespaces == ()


def test_webhook_settings_from_flags_or_env():
    s = parse(["--webhook-host", "127.0.0.1", "--webhook-host", "a.example"], {})
    assert s.webhook_hosts == ("127.0.0.1", "a.example") and s.webhook_addr == ":9443"
    env = {"MINOP_WEBHOOK_CERT_MODE": "olm", "MINOP_WEBHOOK_ADDR": "0"}
    s = parse([], env)
    assert (s.webhook_cert_mode, s.webhook_addr) == ("olm", "0")


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"MINOP_WORKERS": "many"}, "MINOP_WORKERS"),
        ({"MINOP_WORKERS": "0"}, "workers"),
        ({"MINOP_LEADER_ELECT": "maybe"}, "MINOP_LEADER_ELECT"),
        ({"MINOP_LOG_FORMAT": "xml"}, "log-format"),
        ({"MINOP_WEBHOOK_CERT_MODE": "vault"}, "webhook-cert-mode"),
        ({"MINOP_WEBHOOK_MAX_IN_FLIGHT": "0"}, "webhook-max-in-flight"),
    ],
)
def test_bad_settings_name_the_field(env, field):
    with pytest.raises(SettingsError, match=field):
        parse([], env)


def test_kubeconfig_lists_merge_first_wins_and_paths_resolve(tmp_path):
    a, b = tmp_path / "a", tmp_path / "sub" / "b"
    b.parent.mkdir()
    a.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c1", "cluster": {"server": "https://one"}}],
                "users": [{"name": "u1", "user": {"client-certificate": "cert.pem"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c1", "user": "u1"}}],
            }
        )
    )
    b.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c1", "cluster": {"server": "https://shadowed"}}],
                "users": [{"name": "u2", "user": {"token": "t"}}],
                "contexts": [{"name": "y", "context": {"cluster": "c1", "user": "u2"}}],
                "current-context": "y",
            }
        )
    )
    doc = merged_kubeconfig([a, b])
    assert doc["current-context"] == "y"
    assert [c["cluster"]["server"] for c in doc["clusters"]] == ["https://one"]
    assert doc["users"][0]["user"]["client-certificate"] == str(tmp_path / "cert.pem")
    with pytest.raises(ConfigError, match="context 'nope' not found"):
        merged_kubeconfig([a, b], context="nope")


def test_missing_kubeconfig_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="KUBECONFIG"):
        merged_kubeconfig([tmp_path / "missing"])


def test_metrics_render_parses_with_the_official_parser():
    m = Metrics()
    m.reconcile_total.inc(controller="widget", result="success")
    m.hook_calls.inc(plugin='we"ird\\name\n', hook="minop_create", result="error")
    m.reconcile_time.observe(0.2, controller="widget")
    m.queue_depth.set(0, name="minop")
    families = {f.name: f for f in text_string_to_metric_families(m.render())}
    assert families["controller_runtime_reconcile"].samples[0].value == 1
    hook = families["minop_hook_calls"].samples[0]
    assert hook.labels["plugin"] == 'we"ird\\name\n'
    hist = families["controller_runtime_reconcile_time_seconds"]
    buckets = {s.labels.get("le"): s.value for s in hist.samples if s.name.endswith("_bucket")}
    assert buckets["0.1"] == 0 and buckets["0.25"] == 1 and buckets["+Inf"] == 1
