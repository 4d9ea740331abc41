import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  childPath,
  duplicate,
  forbidden,
  formatBadValue,
  formatFieldError,
  formatFieldErrors,
  goQuote,
  indexPath,
  invalid,
  isCIDR,
  isDNS1035Label,
  isDNS1123Label,
  isDNS1123Subdomain,
  isQualifiedName,
  isValidIP,
  isValidLabelValue,
  isValidPercent,
  isValidPortName,
  isValidPortNum,
  keyPath,
  nameIsDNS1035Label,
  nameIsDNSLabel,
  nameIsDNSSubdomain,
  notSupported,
  required,
  TotalAnnotationSizeLimitB,
  tooLong,
  tooMany,
  validateAnnotations,
  validateLabels,
  validateObjectMetaName,
  validatePathSegmentName,
} from './validation.ts';

const subdomainMsg =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and " +
  "end with an alphanumeric character (e.g. 'example.com', regex used for validation is " +
  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const labelMsg =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with " +
  "an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const dns1035Msg =
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and " +
  "end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const qnameMsg =
  "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character " +
  "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const labelValueMsg =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end " +
  "with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is " +
  "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

describe('field errors', () => {
  it('reads like upstream ErrorBody and Error', () => {
    assert.equal(
      formatFieldError(required('spec.containers[0].image')),
      'spec.containers[0].image: Required value',
    );
    assert.equal(
      formatFieldError(required('metadata.name', 'name or generateName is required')),
      'metadata.name: Required value: name or generateName is required',
    );
    const e = invalid('metadata.name', 'Bad_Name', isDNS1123Subdomain('Bad_Name')[0] as string);
    assert.equal(e.type, 'FieldValueInvalid');
    assert.equal(e.message, `Invalid value: "Bad_Name": ${subdomainMsg}`);
    assert.equal(formatFieldError(e), `metadata.name: Invalid value: "Bad_Name": ${subdomainMsg}`);
    assert.equal(e.detail, subdomainMsg);
    assert.equal(e.badValue, 'Bad_Name');
    assert.equal(
      notSupported('spec.restartPolicy', 'Sometimes', ['Always', 'OnFailure', 'Never']).message,
      'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
    );
    assert.equal(notSupported('x', 'y', []).message, 'Unsupported value: "y"');
    assert.equal(
      forbidden('metadata.namespace', 'not allowed on this type').message,
      'Forbidden: not allowed on this type',
    );
    assert.equal(duplicate('spec.ports[1].name', 'http').message, 'Duplicate value: "http"');
    assert.equal(
      duplicate('spec.ports[1]', { port: 80, name: 'a' }).message,
      'Duplicate value: {"name":"a","port":80}',
    );
    assert.equal(
      tooLong('metadata.annotations', 'x'.repeat(10), 262144).message,
      'Too long: may not be more than 262144 bytes',
    );
    assert.equal(tooLong('f', '', 1).message, 'Too long: may not be more than 1 byte');
    assert.equal(tooLong('f', '', -1).message, 'Too long: value is too long');
    assert.equal(tooMany('spec.containers', 5, 3).message, 'Too many: 5: must have at most 3 items');
    assert.equal(tooMany('spec.containers', -1, 1).message, 'Too many: must have at most 1 item');
    assert.equal(tooMany('spec.containers', 2, -1).message, 'Too many: 2: has too many items');
  });

  it('renders bad values the way Go does', () => {
    assert.equal(formatBadValue('a"b\\c\n\t'), '"a\\"b\\\\c\\n\\t"');
    assert.equal(formatBadValue('\x00\x7f'), '"\\x00\\x7f"');
    assert.equal(formatBadValue('héllo 世界 😀'), '"héllo 世界 😀"');
    assert.equal(formatBadValue('\u200b'), '"\\u200b"');
    assert.equal(formatBadValue(-5), '-5');
    assert.equal(formatBadValue(1.5), '1.5');
    assert.equal(formatBadValue(1e21), '1e+21');
    assert.equal(formatBadValue(0.00001), '1e-05');
    assert.equal(formatBadValue(true), 'true');
    assert.equal(formatBadValue(null), 'null');
    assert.equal(formatBadValue(undefined), 'null');
    assert.equal(formatBadValue(10n), '10');
    assert.equal(formatBadValue(['a', 'b']), '["a","b"]');
    assert.equal(formatBadValue([]), '[]');
    assert.equal(formatBadValue({ b: 1, a: '<&>' }), '{"a":"\\u003c\\u0026\\u003e","b":1}');
    assert.equal(goQuote(''), '""');
  });

  it('aggregates like ErrorList.ToAggregate', () => {
    const a = required('spec.containers');
    const b = invalid('metadata.name', 'X', 'bad');
    assert.equal(formatFieldErrors([]), '');
    assert.equal(formatFieldErrors([a]), 'spec.containers: Required value');
    assert.equal(
      formatFieldErrors([a, b, a]),
      '[spec.containers: Required value, metadata.name: Invalid value: "X": bad]',
    );
    assert.equal(
      `Pod "x" is invalid: ${formatFieldErrors([invalid('metadata.name', 'X', isDNS1123Subdomain('X')[0] as string)])}`,
      `Pod "x" is invalid: metadata.name: Invalid value: "X": ${subdomainMsg}`,
    );
  });

  it('builds field paths', () => {
    assert.equal(childPath('metadata', 'labels'), 'metadata.labels');
    assert.equal(childPath('', 'spec', 'template'), 'spec.template');
    assert.equal(indexPath(childPath('spec', 'containers'), 0), 'spec.containers[0]');
    assert.equal(keyPath('metadata.labels', 'app'), 'metadata.labels[app]');
  });
});

describe('name rules', () => {
  it('isDNS1123Label', () => {
    for (const v of ['a', 'ab', 'abc', 'a1', 'a-1', 'a--1--2--b', '0', '01', '1-2', 'a'.repeat(63)]) {
      assert.deepEqual(isDNS1123Label(v), [], v);
    }
    for (const v of [
      '',
      'A',
      'ABC',
      'aBc',
      'A1',
      'A-1',
      '-',
      'a-',
      '-a',
      '1-',
      '_',
      'a_b',
      'a b',
      'a@b',
      '😀',
    ]) {
      assert.deepEqual(isDNS1123Label(v), [labelMsg], v);
    }
    assert.deepEqual(isDNS1123Label('a.b'), ['must not contain dots']);
    assert.deepEqual(isDNS1123Label('a'.repeat(64)), ['must be no more than 63 characters']);
    assert.deepEqual(isDNS1123Label(`${'a'.repeat(63)}-`), ['must be no more than 63 characters', labelMsg]);
  });

  it('isDNS1123Subdomain', () => {
    for (const v of [
      'a',
      'ab',
      'a.b',
      'a-1.b-2',
      '0.0',
      'a--1.b',
      'example.com',
      `${'a'.repeat(63)}.${'b'.repeat(63)}`,
    ]) {
      assert.deepEqual(isDNS1123Subdomain(v), [], v);
    }
    for (const v of ['', 'A', 'a.', '.a', 'a..b', 'a-.b', 'a.-b', 'a_b', 'Bad_Name', 'a b']) {
      assert.deepEqual(isDNS1123Subdomain(v), [subdomainMsg], v);
    }
    assert.deepEqual(isDNS1123Subdomain('a'.repeat(253)), []);
    assert.deepEqual(isDNS1123Subdomain('a'.repeat(254)), ['must be no more than 253 characters']);
  });

  it('isDNS1035Label', () => {
    for (const v of ['a', 'ab', 'a1', 'a-1', 'a--1--2--b', 'a'.repeat(63)])
      assert.deepEqual(isDNS1035Label(v), [], v);
    for (const v of ['', '0', '01', '1a', 'A', 'a-', '-a', 'a.b', 'a_b'])
      assert.deepEqual(isDNS1035Label(v), [dns1035Msg], v);
    assert.deepEqual(isDNS1035Label('a'.repeat(64)), ['must be no more than 63 characters']);
  });

  it('isQualifiedName', () => {
    const good = [
      'simple',
      'now-with-dashes',
      '1-starts-with-num',
      '1234',
      'simple/simple',
      'now-with-dashes/simple',
      'now-with-dashes/now-with-dashes',
      'now.with.dots/now-with-dashes',
      'now-with.dashes-and.dots/now_with_underscores',
      'lower/Case',
      'a.b-c/D_e.F',
      'k8s.io/app',
      `${'a'.repeat(253)}/${'b'.repeat(63)}`,
    ];
    for (const v of good) assert.deepEqual(isQualifiedName(v), [], v);
    const bad = [
      'nospecialchars%^=@',
      'cantendwithadash-',
      '-cantstartwithadash-',
      'only/one/slash',
      'Example.com/name',
      '.com/name',
      '_underscore/name',
      'a/',
      '/a',
      '',
      'a'.repeat(64),
      `${'a'.repeat(254)}/b`,
      'space in/name',
    ];
    for (const v of bad) assert.notDeepEqual(isQualifiedName(v), [], v);
    assert.deepEqual(isQualifiedName('a_'), [`name part ${qnameMsg}`]);
    assert.deepEqual(isQualifiedName(''), ['name part must be non-empty', `name part ${qnameMsg}`]);
    assert.deepEqual(isQualifiedName('/a'), ['prefix part must be non-empty']);
    assert.deepEqual(isQualifiedName('A.com/a'), [`prefix part ${subdomainMsg}`]);
    assert.deepEqual(isQualifiedName('a'.repeat(64)), ['name part must be no more than 63 characters']);
    assert.deepEqual(isQualifiedName('a/b/c'), [
      `a qualified name ${qnameMsg} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    ]);
  });

  it('isValidLabelValue', () => {
    for (const v of [
      'simple',
      'now-with-dashes',
      '1-starts-with-num',
      'end-with-num-1',
      '1234',
      'a.b_C-D',
      '',
      'a'.repeat(63),
    ]) {
      assert.deepEqual(isValidLabelValue(v), [], v);
    }
    for (const v of [
      'nospecialchars%^=@',
      'cantendwithadash-',
      '-cantstartwithadash-',
      'slash/not/allowed',
      'a b',
      '_a',
    ]) {
      assert.deepEqual(isValidLabelValue(v), [labelValueMsg], v);
    }
    assert.deepEqual(isValidLabelValue('a'.repeat(64)), ['must be no more than 63 characters']);
    // Lengths are bytes, as upstream's len().
    assert.deepEqual(isValidLabelValue('é'.repeat(32)), [
      'must be no more than 63 characters',
      labelValueMsg,
    ]);
  });

  it('port names and numbers', () => {
    for (const v of [
      'telnet',
      're-mail-ck',
      'pop3',
      'a',
      'a-1',
      '1-a',
      'a-1-b-2-c',
      '1-a-2-b-3',
      'abcdefghijklmno',
    ]) {
      assert.deepEqual(isValidPortName(v), [], v);
    }
    assert.deepEqual(isValidPortName('www'), []);
    assert.deepEqual(isValidPortName('abcdefghijklmnop'), ['must be no more than 15 characters']);
    assert.deepEqual(isValidPortName('Upper'), [
      'must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
    ]);
    assert.deepEqual(isValidPortName('123'), ['must contain at least one letter (a-z)']);
    assert.deepEqual(isValidPortName('a--b'), ['must not contain consecutive hyphens']);
    assert.deepEqual(isValidPortName('-ab'), ['must not begin or end with a hyphen']);
    assert.deepEqual(isValidPortName(''), [
      'must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
      'must contain at least one letter (a-z)',
    ]);
    for (const n of [1, 80, 65535]) assert.deepEqual(isValidPortNum(n), []);
    for (const n of [0, -1, 65536, 1.5, Number.NaN])
      assert.deepEqual(isValidPortNum(n), ['must be between 1 and 65535, inclusive']);
  });

  it('IP addresses and CIDRs', () => {
    const goodIPs = [
      '127.0.0.1',
      '10.0.0.1',
      '255.255.255.255',
      '0.0.0.0',
      '010.001.0.1',
      '::',
      '::1',
      '2001:db8::ffff',
      '2001:0db8:0000:0000:0000:ff00:0042:8329',
      '1:2:3:4:5:6:7:8',
      '1::8',
      '::ffff:1.2.3.4',
      '1:2:3:4:5:6:1.2.3.4',
      'fe80::',
    ];
    for (const v of goodIPs) assert.deepEqual(isValidIP(v), [], v);
    const badIPs = [
      '',
      '1.2.3',
      '1.2.3.4.5',
      '256.0.0.1',
      '1.2.3.4 ',
      'a.b.c.d',
      '1:2:3:4:5:6:7:8:9',
      '1::2::3',
      ':1',
      '12345::',
      'fe80::1%eth0',
      '1:2:3:4:5:6:7:1.2.3.4',
      '::1.2.3',
      'localhost',
    ];
    for (const v of badIPs)
      assert.deepEqual(isValidIP(v), ['must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'], v);
    for (const v of [
      '10.0.0.0/8',
      '10.0.0.1/32',
      '0.0.0.0/0',
      '2001:db8::/64',
      '::/0',
      '::1/128',
      '10.0.0.0/08',
    ]) {
      assert.deepEqual(isCIDR(v), [], v);
    }
    for (const v of [
      '10.0.0.0',
      '10.0.0.0/33',
      '::/129',
      '10.0.0.0/',
      '/8',
      '10.0.0.0/a',
      '10.0.0.0/8/8',
      '10.0.0.0/-1',
    ]) {
      assert.deepEqual(isCIDR(v), ['must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)'], v);
    }
  });

  it('percentages', () => {
    for (const v of ['0%', '1%', '100%', '250%']) assert.deepEqual(isValidPercent(v), [], v);
    for (const v of ['', '%', '1', '1.5%', '-1%', ' 1%']) {
      assert.deepEqual(
        isValidPercent(v),
        [
          "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
        ],
        v,
      );
    }
  });
});

describe('labels and annotations', () => {
  it('validateLabels', () => {
    assert.deepEqual(validateLabels(undefined, 'metadata.labels'), []);
    assert.deepEqual(
      validateLabels({ app: 'web', 'k8s.io/tier': '', 'a.b/c_d': 'E-f.1' }, 'metadata.labels'),
      [],
    );
    const errs = validateLabels({ 'bad key': 'ok', good: 'bad value' }, 'metadata.labels');
    assert.deepEqual(errs.map(formatFieldError), [
      `metadata.labels: Invalid value: "bad key": name part ${qnameMsg}`,
      `metadata.labels: Invalid value: "bad value": ${labelValueMsg}`,
    ]);
  });

  it('validateAnnotations', () => {
    assert.deepEqual(validateAnnotations(null, 'metadata.annotations'), []);
    assert.deepEqual(
      validateAnnotations({ 'Example.COM/Anything': 'any value at all: \n {}' }, 'metadata.annotations'),
      [],
    );
    assert.deepEqual(validateAnnotations({ 'a b': '' }, 'metadata.annotations').map(formatFieldError), [
      `metadata.annotations: Invalid value: "a b": name part ${qnameMsg}`,
    ]);
    const big = { a: 'x'.repeat(TotalAnnotationSizeLimitB - 1) };
    assert.deepEqual(validateAnnotations(big, 'metadata.annotations'), []);
    const tooBig = { ab: 'x'.repeat(TotalAnnotationSizeLimitB - 1) };
    assert.deepEqual(validateAnnotations(tooBig, 'metadata.annotations').map(formatFieldError), [
      'metadata.annotations: Too long: may not be more than 262144 bytes',
    ]);
  });
});

describe('validateObjectMetaName', () => {
  const messages = (errs: ReturnType<typeof validateObjectMetaName>) => errs.map(formatFieldError);

  it('accepts valid names', () => {
    assert.deepEqual(
      validateObjectMetaName({ name: 'web', namespace: 'default' }, true, nameIsDNSSubdomain),
      [],
    );
    assert.deepEqual(validateObjectMetaName({ name: 'node-1.example.com' }, false, nameIsDNSSubdomain), []);
    assert.deepEqual(
      validateObjectMetaName({ name: 'x', generateName: 'web-', namespace: 'ns' }, true, nameIsDNSLabel),
      [],
    );
  });

  it('requires a name and, for namespaced kinds, a namespace', () => {
    assert.deepEqual(messages(validateObjectMetaName({}, true, nameIsDNSSubdomain)), [
      'metadata.name: Required value: name or generateName is required',
      'metadata.namespace: Required value',
    ]);
    assert.deepEqual(
      messages(validateObjectMetaName({ name: 'a', namespace: 'ns' }, false, nameIsDNSSubdomain)),
      ['metadata.namespace: Forbidden: not allowed on this type'],
    );
    assert.deepEqual(
      messages(validateObjectMetaName({ name: 'a', namespace: 'Bad.NS' }, true, nameIsDNSSubdomain)),
      [`metadata.namespace: Invalid value: "Bad.NS": ${labelMsg}`],
    );
  });

  it('checks name and generateName with the kind’s rule', () => {
    assert.deepEqual(messages(validateObjectMetaName({ name: 'Bad_Name' }, false, nameIsDNSSubdomain)), [
      `metadata.name: Invalid value: "Bad_Name": ${subdomainMsg}`,
    ]);
    assert.deepEqual(
      messages(validateObjectMetaName({ name: '1abc', namespace: 'ns' }, true, nameIsDNS1035Label)),
      [`metadata.name: Invalid value: "1abc": ${dns1035Msg}`],
    );
    assert.deepEqual(
      messages(validateObjectMetaName({ generateName: 'Bad-', name: 'ok' }, false, nameIsDNSSubdomain)),
      [`metadata.generateName: Invalid value: "Bad-": ${subdomainMsg}`],
    );
    // A plain string rule, without the prefix parameter, works too.
    assert.deepEqual(messages(validateObjectMetaName({ name: 'A' }, false, isDNS1123Label)), [
      `metadata.name: Invalid value: "A": ${labelMsg}`,
    ]);
    assert.deepEqual(
      messages(validateObjectMetaName({ name: 'x' }, false, nameIsDNSSubdomain, 'spec.template.metadata')),
      [],
    );
    assert.deepEqual(
      messages(validateObjectMetaName({}, false, nameIsDNSSubdomain, 'spec.template.metadata')),
      ['spec.template.metadata.name: Required value: name or generateName is required'],
    );
  });

  it('lets a generateName end in a dash', () => {
    assert.deepEqual(nameIsDNSSubdomain('web-', true), []);
    assert.deepEqual(nameIsDNSLabel('web-', true), []);
    assert.deepEqual(nameIsDNS1035Label('web-', true), []);
    assert.deepEqual(nameIsDNSSubdomain('web-', false), [subdomainMsg]);
    assert.deepEqual(nameIsDNSSubdomain('-', true), [subdomainMsg]);
    // Upstream drops two characters before appending "a": "a.-" becomes "aa".
    assert.deepEqual(nameIsDNSSubdomain('a.-', true), []);
  });

  it('path segment names', () => {
    assert.deepEqual(validatePathSegmentName('system:admin', false), []);
    assert.deepEqual(validatePathSegmentName('.', false), ["may not be '.'"]);
    assert.deepEqual(validatePathSegmentName('..', false), ["may not be '..'"]);
    assert.deepEqual(validatePathSegmentName('.', true), []);
    assert.deepEqual(validatePathSegmentName('a/b%c', false), ["may not contain '/'", "may not contain '%'"]);
    assert.deepEqual(validatePathSegmentName('a/', true), ["may not contain '/'"]);
  });
});
