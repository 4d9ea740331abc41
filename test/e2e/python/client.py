"""Scenarios for the official Python client (Debian's python3-kubernetes)
against a real `skiff server`; run by test/e2e/python-client.test.ts.

    /usr/bin/python3 client.py SCENARIO KUBECONFIG NAMESPACE WORKDIR

Each scenario drives the client as a user would and prints one JSON object
of what it saw; the TypeScript test holds the assertions.
"""

import json
import os
import sys
import threading

import yaml
from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException


def api_error(err):
    """An ApiException as its HTTP status and the decoded Status body."""
    body = err.body.decode() if isinstance(err.body, bytes) else err.body
    return {'status': err.status, 'body': json.loads(body)}


def configmap(name, labels=None, data=None):
    return {'metadata': {'name': name, 'labels': labels or {}}, 'data': data or {}}


def deployment(name):
    """A Deployment with only the fields the API requires."""
    labels = {'app': name}
    return {
        'metadata': {'name': name},
        'spec': {
            'selector': {'matchLabels': labels},
            'template': {
                'metadata': {'labels': labels},
                'spec': {'containers': [{'name': 'main', 'image': 'busybox'}]},
            },
        },
    }


def watch_from_list(ns, _workdir):
    """list, then watch from the list's resourceVersion."""
    core = client.CoreV1Api()
    selector = 'suite=py-watch'
    core.create_namespaced_config_map(ns, configmap('before', {'suite': 'py-watch'}))
    core.patch_namespaced_config_map('before', ns, {'data': {'changed': 'before the list'}})
    listed = core.list_namespaced_config_map(ns, label_selector=selector)
    rv = listed.metadata.resource_version

    events = []
    done = threading.Event()

    def stream():
        w = watch.Watch()
        # The client asks with watch=True (Python's spelling of a bool).
        for event in w.stream(
            core.list_namespaced_config_map,
            ns,
            label_selector=selector,
            resource_version=rv,
            timeout_seconds=60,
        ):
            obj = event['object']
            events.append([event['type'], obj.metadata.name, (obj.data or {}).get('step')])
            if event['type'] == 'DELETED':
                w.stop()
        done.set()

    # Every change below comes after the list: the watch sees all of them,
    # however late its request reaches the server.
    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    core.create_namespaced_config_map(ns, configmap('after', {'suite': 'py-watch'}, {'step': '1'}))
    core.patch_namespaced_config_map('after', ns, {'data': {'step': '2'}})
    core.delete_namespaced_config_map('after', ns)
    done.wait(60)
    return {'listed': [i.metadata.name for i in listed.items], 'events': events}


def paginate(ns, _workdir):
    """limit and _continue over more objects than one page."""
    core = client.CoreV1Api()
    for i in range(7):
        core.create_namespaced_config_map(ns, configmap(f'page-{i}', {'suite': 'py-page'}))
    return {
        # remainingItemCount is only known without selectors (upstream's rule).
        'unselected': list_pages(core, ns, None),
        'selected': list_pages(core, ns, 'suite=py-page'),
    }


def list_pages(core, ns, selector):
    pages = []
    token = None
    while True:
        page = core.list_namespaced_config_map(ns, label_selector=selector, limit=3, _continue=token)
        token = page.metadata._continue
        pages.append(
            {
                'names': [i.metadata.name for i in page.items],
                'continue': token,
                'remaining': page.metadata.remaining_item_count,
                'resourceVersion': page.metadata.resource_version,
            }
        )
        if not token or len(pages) > 10:
            break
    return pages


def patches(ns, workdir):
    """JSON patch, merge patch, strategic merge patch and server-side apply."""
    apps = client.AppsV1Api()
    apps.create_namespaced_deployment(ns, deployment('patched'))
    out = {}

    def containers(d):
        return [[c.name, c.image] for c in d.spec.template.spec.containers]

    # A list body is a JSON patch (the client picks application/json-patch+json).
    d = apps.patch_namespaced_deployment(
        'patched', ns, [{'op': 'replace', 'path': '/spec/replicas', 'value': 3}]
    )
    out['jsonPatch'] = {'replicas': d.spec.replicas}
    try:
        apps.patch_namespaced_deployment(
            'patched', ns, [{'op': 'test', 'path': '/spec/replicas', 'value': 9}]
        )
        out['failedTest'] = None
    except ApiException as err:
        out['failedTest'] = api_error(err)

    # A dict body is a strategic merge patch: containers merge by name.
    d = apps.patch_namespaced_deployment(
        'patched',
        ns,
        {'spec': {'template': {'spec': {'containers': [{'name': 'sidecar', 'image': 'redis'}]}}}},
    )
    out['strategicAdd'] = containers(d)
    d = apps.patch_namespaced_deployment(
        'patched',
        ns,
        {'spec': {'template': {'spec': {'containers': [{'name': 'main', 'image': 'busybox:1.36'}]}}}},
    )
    out['strategicUpdate'] = containers(d)

    # This client version has no _content_type; its dynamic client sends
    # merge patches and applies.
    dyn = dynamic.DynamicClient(
        client.ApiClient(), cache_file=os.path.join(workdir, 'python-discovery.json')
    )
    deployments = dyn.resources.get(api_version='apps/v1', kind='Deployment')
    d = deployments.patch(
        name='patched',
        namespace=ns,
        body={
            'metadata': {'labels': {'patched': 'merge'}},
            'spec': {'template': {'spec': {'containers': [{'name': 'main', 'image': 'busybox:1.37'}]}}},
        },
        content_type='application/merge-patch+json',
    )
    out['merge'] = {
        'labels': dict(d.metadata.labels),
        'containers': [[c.name, c.image] for c in d.spec.template.spec.containers],
    }

    configmaps = dyn.resources.get(api_version='v1', kind='ConfigMap')

    def apply(manager, data, force=None):
        body = {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'applied'}, 'data': data}
        return configmaps.server_side_apply(
            name='applied',
            namespace=ns,
            body=yaml.safe_dump(body),  # YAML, as the content type says
            field_manager=manager,
            force_conflicts=force,
        )

    def managers(obj):
        return sorted([m.manager, m.operation] for m in obj.metadata.managedFields)

    created = apply('py-first', {'owned': 'first', 'other': 'x'})
    out['applyCreate'] = {'data': dict(created.data), 'managers': managers(created)}
    try:
        apply('py-second', {'owned': 'second'})
        out['applyConflict'] = None
    except ApiException as err:
        out['applyConflict'] = api_error(err)
    forced = apply('py-second', {'owned': 'second'}, force=True)
    out['applyForce'] = {'data': dict(forced.data), 'managers': managers(forced)}
    return out


def conflict(ns, _workdir):
    """An update with a stale resourceVersion."""
    core = client.CoreV1Api()
    core.create_namespaced_config_map(ns, configmap('contended', data={'v': '0'}))
    first = core.read_namespaced_config_map('contended', ns)
    stale = core.read_namespaced_config_map('contended', ns)
    first.data = {'v': '1'}
    updated = core.replace_namespaced_config_map('contended', ns, first)
    stale.data = {'v': 'stale'}
    try:
        core.replace_namespaced_config_map('contended', ns, stale)
        error = None
    except ApiException as err:
        error = api_error(err)
    final = core.read_namespaced_config_map('contended', ns)
    return {
        'staleResourceVersion': stale.metadata.resource_version,
        'updatedResourceVersion': updated.metadata.resource_version,
        'error': error,
        'final': dict(final.data),
    }


def not_found(ns, _workdir):
    """Reads of objects that do not exist."""
    out = {}
    for key, read in [
        ('configmap', lambda: client.CoreV1Api().read_namespaced_config_map('missing', ns)),
        ('deployment', lambda: client.AppsV1Api().read_namespaced_deployment('missing', ns)),
    ]:
        try:
            read()
            out[key] = None
        except ApiException as err:
            out[key] = api_error(err)
    return out


def deployment_defaults(ns, _workdir):
    """A Deployment created with the minimum fields, as the server returns it."""
    apps = client.AppsV1Api()
    api = client.ApiClient()
    created = apps.create_namespaced_deployment(ns, deployment('defaulted'))
    read = apps.read_namespaced_deployment('defaulted', ns)
    return {
        'created': api.sanitize_for_serialization(created.spec),
        'read': api.sanitize_for_serialization(read.spec),
    }


def bind(ns, _workdir):
    """A custom scheduler's bind: POST .../bindings naming the pod."""
    core = client.CoreV1Api()
    core.create_namespaced_pod(
        ns,
        {
            'metadata': {'name': 'to-bind'},
            # Not the default scheduler's: nothing else binds it.
            'spec': {'schedulerName': 'py-scheduler', 'containers': [{'name': 'c', 'image': 'busybox'}]},
        },
    )
    body = client.V1Binding(
        metadata=client.V1ObjectMeta(name='to-bind'),
        target=client.V1ObjectReference(api_version='v1', kind='Node', name='py-node'),
    )
    # The answer is a Status, as upstream's, which this client cannot read
    # as a V1Binding: take it raw, as Python schedulers do.
    answer = core.create_namespaced_binding(ns, body, _preload_content=False)
    pod = core.read_namespaced_pod('to-bind', ns)
    core.delete_namespaced_pod('to-bind', ns, grace_period_seconds=0)
    return {
        'status': answer.status,
        'answer': json.loads(answer.data),
        'nodeName': pod.spec.node_name,
        'scheduled': [c.type for c in pod.status.conditions or [] if c.status == 'True'],
    }


def pretty(ns, _workdir):
    """pretty='true', the raw answer as the client receives it."""
    core = client.CoreV1Api()
    core.create_namespaced_config_map(ns, configmap('pretty', data={'a': '1'}))
    indented = core.read_namespaced_config_map('pretty', ns, pretty='true', _preload_content=False)
    compact = core.read_namespaced_config_map('pretty', ns, _preload_content=False)
    return {'pretty': indented.data.decode(), 'compact': compact.data.decode()}


SCENARIOS = {
    'bind': bind,
    'pretty': pretty,
    'watch': watch_from_list,
    'paginate': paginate,
    'patches': patches,
    'conflict': conflict,
    'not-found': not_found,
    'deployment-defaults': deployment_defaults,
}

if __name__ == '__main__':
    scenario, kubeconfig, namespace, workdir = sys.argv[1:5]
    config.load_kube_config(config_file=kubeconfig)
    print(json.dumps(SCENARIOS[scenario](namespace, workdir)))
