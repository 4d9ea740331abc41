// registries.yaml: parsing and its errors, and what it becomes for
// containerd (hosts.toml per registry, credentials in config.toml), with and
// without the node's offline mirror.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  criRegistryAuthToml,
  EMPTY_REGISTRIES,
  loadRegistries,
  normalizeEndpoint,
  parseRegistries,
  type Registries,
  RegistriesError,
  registryHosts,
  renderHostsToml,
  writeRegistryHosts,
} from './registries.ts';
import { PUBLIC_REGISTRIES } from './runtime.ts';

const FILE = '/etc/skiff/registries.yaml';
const OFFLINE = 'http://127.0.0.1:40001';
let dir: string;
let ca: string;
let cert: string;
let key: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skiff-registries-'));
  [ca, cert, key] = ['ca.crt', 'client.crt', 'client.key'].map((f) => join(dir, f)) as [
    string,
    string,
    string,
  ];
  for (const f of [ca, cert, key]) await writeFile(f, 'pem');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const rejects = (yaml: string, message: RegExp) =>
  assert.throws(
    () => parseRegistries(yaml, FILE),
    (err: Error) => err instanceof RegistriesError && message.test(err.message),
  );

describe('parseRegistries', () => {
  it("reads k3s's format: mirrors with endpoints and rewrites, configs with auth and tls", () => {
    const r = parseRegistries(
      `
mirrors:
  docker.io:
    endpoint: ["https://mirror.example:5000", "registry.local:5000"]
    rewrite:
      "^rancher/(.*)": "mirror/rancher/$1"
configs:
  mirror.example:5000:
    auth: { username: u, password: p }
    tls: { ca_file: ${ca}, cert_file: ${cert}, key_file: ${key} }
  registry.local:5000:
    auth: { auth: ${Buffer.from('a:b').toString('base64')} }
    tls: { insecure_skip_verify: true }
`,
      FILE,
    );
    assert.deepEqual(r.mirrors['docker.io'], {
      endpoint: ['https://mirror.example:5000', 'registry.local:5000'],
      rewrite: { '^rancher/(.*)': 'mirror/rancher/$1' },
    });
    assert.deepEqual(r.configs['mirror.example:5000'], {
      auth: { username: 'u', password: 'p' },
      tls: { ca_file: ca, cert_file: cert, key_file: key },
    });
    assert.deepEqual(r.configs['registry.local:5000']?.tls, { insecure_skip_verify: true });
  });

  it('takes an empty file as no configuration', () => {
    assert.deepEqual(parseRegistries('', FILE), EMPTY_REGISTRIES);
    assert.deepEqual(parseRegistries('mirrors: {}\n', FILE), EMPTY_REGISTRIES);
  });

  it('names the file and the key in every error', () => {
    rejects('mirrors: [', /^\/etc\/skiff\/registries\.yaml: not valid YAML/);
    rejects('mirror: {}', /registries\.yaml: mirror: unknown key \(expected mirrors, configs\)/);
    rejects('mirrors: { docker.io: {} }', /: mirrors\.docker\.io\.endpoint: must be a list of at least one/);
    rejects(
      'mirrors: { docker.io: { endpoint: "https://x" } }',
      /mirrors\.docker\.io\.endpoint: must be a list/,
    );
    rejects(
      'mirrors: { docker.io: { endpoint: [ftp://x] } }',
      /mirrors\.docker\.io\.endpoint\[0\]: the scheme/,
    );
    rejects(
      'mirrors: { docker.io: { endpoint: ["https://x?a=b"] } }',
      /endpoint\[0\]: must be scheme:\/\/host/,
    );
    rejects('mirrors: { docker.io: { endpoint: [x], rewrite: { "(": y } } }', /rewrite\."\(": not a regular/);
    rejects(
      'mirrors: { "https://docker.io": { endpoint: [x] } }',
      /mirrors\.https:\/\/docker\.io: must be a registry host/,
    );
    rejects("mirrors: { '*': { endpoint: [x] } }", /mirrors\.\*: the '\*' wildcard needs containerd 1\.7/);
    rejects(
      'configs: { r: { auth: { username: u } } }',
      /configs\.r\.auth: username and password go together/,
    );
    rejects(
      'configs: { r: { auth: { auth: bm9wZQ== } } }',
      /configs\.r\.auth\.auth: must be base64 of username:password/,
    );
    rejects('configs: { r: { auth: { token: t } } }', /configs\.r\.auth\.token: unknown key/);
    rejects(
      'configs: { r: { tls: { ca_file: /nonexistent/ca.crt } } }',
      /configs\.r\.tls\.ca_file: \/nonexistent\/ca\.crt: no such file/,
    );
    rejects(
      `configs: { r: { tls: { cert_file: ${cert} } } }`,
      /configs\.r\.tls: cert_file and key_file go together/,
    );
    rejects(
      'configs: { r: { tls: { insecure_skip_verify: "yes" } } }',
      /insecure_skip_verify: must be true or false/,
    );
  });
});

describe('loadRegistries', () => {
  it('treats a missing default file as no configuration, and a missing named one as an error', () => {
    assert.deepEqual(loadRegistries(join(dir, 'absent.yaml')), EMPTY_REGISTRIES);
    assert.throws(
      () => loadRegistries(join(dir, 'absent.yaml'), { required: true }),
      /absent\.yaml: no such file/,
    );
  });
});

describe('normalizeEndpoint', () => {
  it("follows containerd's defaults: https, http for localhost on a port, /v2 unless a path is given", () => {
    assert.deepEqual(normalizeEndpoint('mirror.example:5000'), { url: 'https://mirror.example:5000/v2' });
    assert.deepEqual(normalizeEndpoint('localhost:5000'), { url: 'http://localhost:5000/v2' });
    assert.deepEqual(normalizeEndpoint('127.0.0.1:5000'), { url: 'http://127.0.0.1:5000/v2' });
    assert.deepEqual(normalizeEndpoint('https://127.0.0.1:5000/'), { url: 'https://127.0.0.1:5000/v2' });
    assert.deepEqual(normalizeEndpoint('https://m.example/v2/project'), {
      url: 'https://m.example/v2/project',
      overridePath: true,
    });
    assert.deepEqual(normalizeEndpoint('docker.io', true), { url: 'https://registry-1.docker.io/v2' });
  });
});

describe('registryHosts', () => {
  const offline = { offlineMirror: OFFLINE, offlineRegistries: PUBLIC_REGISTRIES };

  it('with no configuration, sends every public registry to the offline mirror only, as before', () => {
    const hosts = registryHosts(EMPTY_REGISTRIES, offline);
    assert.deepEqual([...hosts.keys()], [...PUBLIC_REGISTRIES].sort());
    assert.deepEqual(hosts.get('docker.io'), {
      server: { url: `${OFFLINE}/v2` },
      hosts: [{ url: `${OFFLINE}/v2` }],
    });
  });

  it("tries the offline mirror first, then the user's mirrors, and never the public registry itself", () => {
    const r: Registries = { mirrors: { 'docker.io': { endpoint: ['https://mirror.example'] } }, configs: {} };
    assert.deepEqual(registryHosts(r, offline).get('docker.io'), {
      server: { url: `${OFFLINE}/v2` },
      hosts: [{ url: `${OFFLINE}/v2` }, { url: 'https://mirror.example/v2' }],
    });
  });

  it('without the offline mirror, writes nothing for public registries unless configured', () => {
    assert.equal(registryHosts(EMPTY_REGISTRIES).size, 0);
    const r: Registries = { mirrors: { 'docker.io': { endpoint: ['https://mirror.example'] } }, configs: {} };
    assert.deepEqual(registryHosts(r).get('docker.io'), {
      server: { url: 'https://registry-1.docker.io/v2' },
      hosts: [{ url: 'https://mirror.example/v2' }],
    });
  });

  it("falls back to a private registry's own endpoint, unless the default endpoint is disabled", () => {
    const r: Registries = {
      mirrors: { 'registry.example': { endpoint: ['https://a.example', 'https://b.example'] } },
      configs: {},
    };
    assert.deepEqual(registryHosts(r, offline).get('registry.example'), {
      server: { url: 'https://registry.example/v2' },
      hosts: [{ url: 'https://a.example/v2' }, { url: 'https://b.example/v2' }],
    });
    // containerd 1.6 always has a server: the last mirror stands in for it.
    assert.deepEqual(registryHosts(r, { ...offline, disableDefaultEndpoint: true }).get('registry.example'), {
      server: { url: 'https://b.example/v2' },
      hosts: [{ url: 'https://a.example/v2' }],
    });
  });

  it("puts each endpoint's TLS on its own host entry, by the endpoint's host", () => {
    const r: Registries = {
      mirrors: { 'registry.example': { endpoint: ['https://127.0.0.1:5443', 'http://127.0.0.1:5000'] } },
      configs: {
        '127.0.0.1:5443': { tls: { ca_file: ca, cert_file: cert, key_file: key } },
        'registry.example': { tls: { insecure_skip_verify: true } },
      },
    };
    const hosts = registryHosts(r).get('registry.example');
    assert.deepEqual(hosts, {
      server: { url: 'https://registry.example/v2', tls: { insecure_skip_verify: true } },
      hosts: [
        { url: 'https://127.0.0.1:5443/v2', tls: { ca_file: ca, cert_file: cert, key_file: key } },
        { url: 'http://127.0.0.1:5000/v2' },
      ],
    });
    assert.equal(
      renderHostsToml(hosts!),
      [
        '# Written by Skiff (src/agent/registries.ts); rewritten at every agent start.',
        'server = "https://registry.example/v2"',
        'skip_verify = true',
        '',
        '[host."https://127.0.0.1:5443/v2"]',
        '  capabilities = ["pull", "resolve"]',
        `  ca = [${JSON.stringify(ca)}]`,
        `  client = [[${JSON.stringify(cert)}, ${JSON.stringify(key)}]]`,
        '',
        '[host."http://127.0.0.1:5000/v2"]',
        '  capabilities = ["pull", "resolve"]',
        '',
      ].join('\n'),
    );
  });

  it('gives a registry with only TLS settings a hosts.toml that names its own endpoint', () => {
    const r: Registries = { mirrors: {}, configs: { 'registry.example:5443': { tls: { ca_file: ca } } } };
    const hosts = registryHosts(r).get('registry.example:5443');
    const endpoint = { url: 'https://registry.example:5443/v2', tls: { ca_file: ca } };
    assert.deepEqual(hosts, { server: endpoint, hosts: [endpoint] });
    // Credentials alone need no hosts.toml.
    assert.equal(
      registryHosts({ mirrors: {}, configs: { r: { auth: { username: 'u', password: 'p' } } } }).size,
      0,
    );
  });

  it('marks an endpoint with a path of its own override_path', () => {
    const r: Registries = { mirrors: { 'r.example': { endpoint: ['https://m.example/v2/r'] } }, configs: {} };
    assert.match(
      renderHostsToml(registryHosts(r).get('r.example')!),
      /\[host\."https:\/\/m\.example\/v2\/r"\]\n {2}capabilities = \["pull", "resolve"\]\n {2}override_path = true/,
    );
  });
});

describe('writeRegistryHosts', () => {
  it("writes one hosts.toml per registry and removes Skiff's old ones, leaving others' alone", async () => {
    const certsD = join(dir, 'certs.d');
    await mkdir(join(certsD, 'old.example'), { recursive: true });
    await writeFile(
      join(certsD, 'old.example', 'hosts.toml'),
      '# Written by Skiff (src/agent/containerd.ts).\n',
    );
    await mkdir(join(certsD, 'users.example'), { recursive: true });
    await writeFile(join(certsD, 'users.example', 'hosts.toml'), 'server = "https://users.example"\n');
    await writeRegistryHosts(
      certsD,
      registryHosts(EMPTY_REGISTRIES, { offlineMirror: OFFLINE, offlineRegistries: ['docker.io'] }),
    );
    assert.deepEqual((await readdir(certsD)).sort(), ['docker.io', 'users.example']);
    assert.match(
      await readFile(join(certsD, 'docker.io', 'hosts.toml'), 'utf8'),
      /server = "http:\/\/127\.0\.0\.1:40001\/v2"/,
    );
  });
});

describe('criRegistryAuthToml', () => {
  it("writes each host's credentials under the CRI plugin's registry.configs, docker.io's for its real host too", () => {
    const toml = criRegistryAuthToml({
      mirrors: {},
      configs: {
        '127.0.0.1:5443': { auth: { username: 'u', password: 'p"q' } },
        'docker.io': { auth: { identitytoken: 't' } },
        'tls-only.example': { tls: { insecure_skip_verify: true } },
      },
    });
    assert.equal(
      toml,
      [
        '',
        '[plugins."io.containerd.grpc.v1.cri".registry.configs."127.0.0.1:5443".auth]',
        '  username = "u"',
        '  password = "p\\"q"',
        '',
        '[plugins."io.containerd.grpc.v1.cri".registry.configs."docker.io".auth]',
        '  identitytoken = "t"',
        '',
        '[plugins."io.containerd.grpc.v1.cri".registry.configs."registry-1.docker.io".auth]',
        '  identitytoken = "t"',
        '',
      ].join('\n'),
    );
    assert.equal(criRegistryAuthToml(EMPTY_REGISTRIES), '');
  });
});
