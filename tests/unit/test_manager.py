"""The manager's start: a kind the operator may not list stops it with a clear error."""

import pytest

import minop
from minop.manager import Manager
from minop.plugin.manager import PluginManager
from minop.preflight import StartError
from minop.settings import Settings

from .test_kube import Script, status

CM = minop.Kind("", "v1", "ConfigMap", "configmaps")


class Owner:
    @minop.hookimpl
    def minop_resources(self):
        return [minop.Resource(kind=CM)]


def test_forbidden_list_fails_start_naming_the_kind_and_permission():
    """Defect 10: the manager waited forever for a cache a 403 never fills."""
    s = Script([(200, {}, {"major": "1", "minor": "36"})] + [status(403, "Forbidden", "no")] * 20)
    try:
        pm = PluginManager()
        pm.register(Owner(), "owner")
        settings = Settings(namespaces=("team-a",), health_addr="0", metrics_addr="0")
        m = Manager(settings, plugins=pm, kube=s.kube)
        with pytest.raises(StartError, match=r"list/watch configmaps in namespace team-a"):
            m.start()
        m.stop()
    finally:
        s.httpd.shutdown()
