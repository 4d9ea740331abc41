import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  addQuantity,
  canonicalQuantityString,
  compareQuantity,
  equalQuantity,
  formatQuantity,
  isZeroQuantity,
  milliValue,
  mulQuantity,
  negQuantity,
  newMilliQuantity,
  newQuantity,
  newScaledQuantity,
  parseQuantity,
  type Quantity,
  type QuantityFormat,
  QuantityParseError,
  quantitySign,
  quantityToNumber,
  scaledValue,
  subQuantity,
  value,
} from './quantity.ts';

const int64Max = 2n ** 63n - 1n;
const q = (i: bigint | number, exp: number, format: QuantityFormat) => newScaledQuantity(i, exp, format);

describe('parseQuantity', () => {
  // Upstream's TestQuantityParse table: input, expected value and format.
  const table: [string, Quantity][] = [
    ['0', q(0, 0, 'DecimalSI')],
    ['0n', q(0, 0, 'DecimalSI')],
    ['0u', q(0, 0, 'DecimalSI')],
    ['0m', q(0, 0, 'DecimalSI')],
    ['0Ki', q(0, 0, 'BinarySI')],
    ['0k', q(0, 0, 'DecimalSI')],
    ['0Mi', q(0, 0, 'BinarySI')],
    ['0M', q(0, 0, 'DecimalSI')],
    ['0Gi', q(0, 0, 'BinarySI')],
    ['0G', q(0, 0, 'DecimalSI')],
    ['0Ti', q(0, 0, 'BinarySI')],
    ['0T', q(0, 0, 'DecimalSI')],
    ['1', q(1, 0, 'DecimalSI')],
    ['1Ki', q(1024, 0, 'BinarySI')],
    ['8Ki', q(8 * 1024, 0, 'BinarySI')],
    ['7Mi', q(7 * 1024 ** 2, 0, 'BinarySI')],
    ['6Gi', q(6 * 1024 ** 3, 0, 'BinarySI')],
    ['5Ti', q(5 * 1024 ** 4, 0, 'BinarySI')],
    ['4Pi', q(4 * 1024 ** 5, 0, 'BinarySI')],
    ['3Ei', q(3n * 1024n ** 6n, 0, 'BinarySI')],
    ['10Ti', q(10 * 1024 ** 4, 0, 'BinarySI')],
    ['100Ti', q(100 * 1024 ** 4, 0, 'BinarySI')],
    ['5n', q(5, -9, 'DecimalSI')],
    ['4u', q(4, -6, 'DecimalSI')],
    ['3m', q(3, -3, 'DecimalSI')],
    ['9', q(9, 0, 'DecimalSI')],
    ['8k', q(8, 3, 'DecimalSI')],
    ['50k', q(5, 4, 'DecimalSI')],
    ['7M', q(7, 6, 'DecimalSI')],
    ['6G', q(6, 9, 'DecimalSI')],
    ['5T', q(5, 12, 'DecimalSI')],
    ['40T', q(4, 13, 'DecimalSI')],
    ['300T', q(3, 14, 'DecimalSI')],
    ['2P', q(2, 15, 'DecimalSI')],
    ['1E', q(1, 18, 'DecimalSI')],
    ['1E-3', q(1, -3, 'DecimalExponent')],
    ['1e3', q(1, 3, 'DecimalExponent')],
    ['1E6', q(1, 6, 'DecimalExponent')],
    ['1e9', q(1, 9, 'DecimalExponent')],
    ['1E12', q(1, 12, 'DecimalExponent')],
    ['1e15', q(1, 15, 'DecimalExponent')],
    ['1E18', q(1, 18, 'DecimalExponent')],
    ['1e14', q(1, 14, 'DecimalExponent')],
    ['1e13', q(1, 13, 'DecimalExponent')],
    ['100.035k', q(100035, 0, 'DecimalSI')],
    ['0.001', q(1, -3, 'DecimalSI')],
    ['0.0005k', q(5, -1, 'DecimalSI')],
    ['0.005', q(5, -3, 'DecimalSI')],
    ['0.05', q(5, -2, 'DecimalSI')],
    ['0.5', q(5, -1, 'DecimalSI')],
    ['0.00050k', q(5, -1, 'DecimalSI')],
    ['0.00500', q(5, -3, 'DecimalSI')],
    ['0.05000', q(5, -2, 'DecimalSI')],
    ['0.50000', q(5, -1, 'DecimalSI')],
    ['0.5e0', q(5, -1, 'DecimalExponent')],
    ['0.5e-1', q(5, -2, 'DecimalExponent')],
    ['0.5e-2', q(5, -3, 'DecimalExponent')],
    ['10.035M', q(10035, 3, 'DecimalSI')],
    ['1.2e3', q(12, 2, 'DecimalExponent')],
    ['1.3E+6', q(13, 5, 'DecimalExponent')],
    ['1.40e9', q(14, 8, 'DecimalExponent')],
    ['1.53E12', q(153, 10, 'DecimalExponent')],
    ['1.6e15', q(16, 14, 'DecimalExponent')],
    ['1.7E18', q(17, 17, 'DecimalExponent')],
    ['9.01', q(901, -2, 'DecimalSI')],
    ['8.1k', q(81, 2, 'DecimalSI')],
    ['7.123456M', q(7123456, 0, 'DecimalSI')],
    ['6.987654321G', q(6987654321, 0, 'DecimalSI')],
    ['5.444T', q(5444, 9, 'DecimalSI')],
    ['40.1T', q(401, 11, 'DecimalSI')],
    ['300.2T', q(3002, 11, 'DecimalSI')],
    ['2.5P', q(25, 14, 'DecimalSI')],
    ['1.01E', q(101, 16, 'DecimalSI')],
    // Rounded up to nano, or capped.
    ['3.001n', q(4, -9, 'DecimalSI')],
    ['1.1E-9', q(2, -9, 'DecimalExponent')],
    ['0.0000000001', q(1, -9, 'DecimalSI')],
    ['0.0000000005', q(1, -9, 'DecimalSI')],
    ['0.00000000050', q(1, -9, 'DecimalSI')],
    ['0.5e-9', q(1, -9, 'DecimalExponent')],
    ['0.9n', q(1, -9, 'DecimalSI')],
    ['0.00000012345', q(124, -9, 'DecimalSI')],
    ['0.00000012354', q(124, -9, 'DecimalSI')],
    ['9Ei', q(int64Max, 0, 'BinarySI')],
    ['9223372036854775807Ki', q(int64Max, 0, 'BinarySI')],
    ['12E', q(12, 18, 'DecimalSI')],
    // Fractional binary.
    ['100.035Ki', q(10243584, -2, 'BinarySI')],
    ['0.5Mi', q(0.5 * 1024 * 1024, 0, 'BinarySI')],
    ['0.05Gi', q(536870912, -1, 'BinarySI')],
    ['0.025Ti', q(274877906944, -1, 'BinarySI')],
    // Odd but accepted.
    ['0.000000000001Ki', q(2, -9, 'DecimalSI')],
    ['.001', q(1, -3, 'DecimalSI')],
    ['.0001k', q(100, -3, 'DecimalSI')],
    ['1.', q(1, 0, 'DecimalSI')],
    ['1.G', q(1, 9, 'DecimalSI')],
    // Decimal values are not capped.
    ['18446744073709551616', q(18446744073709551616n, 0, 'DecimalSI')],
    ['1e100', q(1, 100, 'DecimalExponent')],
  ];

  it('parses upstream’s table, with any sign', () => {
    for (const [input, want] of table) {
      for (const [prefix, sign] of [
        ['', 1n],
        ['+', 1n],
        ['-', -1n],
      ] as const) {
        const got = parseQuantity(prefix + input);
        const expected = sign < 0n ? negQuantity(want) : want;
        assert.equal(
          compareQuantity(got, expected),
          0,
          `${prefix}${input}: got ${canonicalQuantityString(got)}`,
        );
        assert.equal(got.format, want.format, `${prefix}${input} format`);
      }
    }
  });

  it('rejects malformed input', () => {
    const cases: [string, string][] = [
      ['', 'format'],
      ['1.1.M', 'format'],
      ['1+1.0M', 'format'],
      ['0.1mi', 'suffix'],
      ['0.1am', 'format'],
      ['aoeu', 'format'],
      ['abc', 'format'],
      ['.5i', 'suffix'],
      ['1i', 'suffix'],
      ['-3.01i', 'suffix'],
      ['-3.01e-', 'suffix'],
      ['1e', 'suffix'],
      ['1.2.3', 'format'],
      ['10 Gi', 'format'],
      [' 1', 'format'],
      ['1 ', 'format'],
      ['1Ki ', 'format'],
      ['Ei', 'numeric'],
      ['e-20', 'numeric'],
      ['1KiB', 'format'],
      ['1e1000000', 'suffix'],
    ];
    for (const [input, code] of cases) {
      assert.throws(
        () => parseQuantity(input),
        (err: unknown) => err instanceof QuantityParseError && err.code === code,
        JSON.stringify(input),
      );
    }
    assert.throws(() => parseQuantity('1.2.3'), {
      message: "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
    });
    assert.throws(() => parseQuantity('1i'), { message: "unable to parse quantity's suffix" });
    assert.throws(() => parseQuantity('Ei'), { message: 'unable to parse numeric part of quantity' });
  });

  it('accepts upstream’s degenerate forms as zero', () => {
    for (const s of ['-', '+', '.', '-0', '00', 'Ki', 'm']) {
      assert.equal(isZeroQuantity(parseQuantity(s)), true, s);
      assert.equal(formatQuantity(parseQuantity(s)), '0', s);
    }
  });
});

describe('formatQuantity', () => {
  it('emits the canonical form', () => {
    const cases: [string, string][] = [
      ['1000m', '1'],
      ['1.5Gi', '1536Mi'],
      ['0.5', '500m'],
      ['1e3', '1e3'],
      ['1024Ki', '1Mi'],
      ['100m', '100m'],
      ['1Ki', '1Ki'],
      ['1Mi', '1Mi'],
      ['1Gi', '1Gi'],
      ['1024Mi', '1Gi'],
      ['1000M', '1G'],
      ['.001Ki', '1024m'],
      ['.000001Ki', '1024u'],
      ['.000000001Ki', '1024n'],
      ['.000000000001Ki', '2n'],
      ['1.5', '1500m'],
      ['1.5Ki', '1536'],
      ['0.5Ki', '512'],
      ['2048Ki', '2Mi'],
      ['1025Ki', '1025Ki'],
      ['1000E', '1e21'],
      ['12E', '12E'],
      ['9Ei', '9223372036854775807'],
      ['100.035Ki', '102435840m'],
      ['0.1', '100m'],
      ['0.0001', '100u'],
      ['1234567890', '1234567890'],
      ['1000000', '1M'],
      ['1.2e3', '1200'],
      ['1e-2', '10e-3'],
      ['3.001n', '4n'],
    ];
    for (const [input, want] of cases) {
      assert.equal(formatQuantity(parseQuantity(input)), want, input);
      if (want !== '0') assert.equal(formatQuantity(parseQuantity(`-${input}`)), `-${want}`, `-${input}`);
    }
  });

  it('keeps the parsed text exactly where upstream does', () => {
    // Upstream's int64 fast path re-emits its input for these, quirks included
    // (kubernetes/kubernetes#138165 for the 3n-fraction-digit case).
    for (const s of [
      '0',
      '100m',
      '1Ki',
      '3Mi',
      '1e3',
      '12E',
      '1.500',
      '1.001',
      '+1',
      '01',
      '1.G',
      '1.Ki',
      '1E3',
      '0100m',
    ]) {
      assert.equal(formatQuantity(parseQuantity(s)), s, s);
    }
    assert.equal(canonicalQuantityString(parseQuantity('1.500')), '1500m');
    assert.equal(canonicalQuantityString(parseQuantity('+1')), '1');
    assert.equal(canonicalQuantityString(parseQuantity('1E3')), '1e3');
    // Never for the slow path or when not in canonical form.
    for (const s of ['1000m', '0.5', '8Ki', '1.5Gi', '0.100', '1.5']) {
      assert.equal(parseQuantity(s).parsed, undefined, s);
    }
  });

  it('renders constructed values per format (upstream TestQuantityString)', () => {
    const cases: [Quantity, string, string][] = [
      [q(1024 ** 3, 0, 'BinarySI'), '1Gi', '1024Mi'],
      [q(300 * 1024 ** 2, 0, 'BinarySI'), '300Mi', '307200Ki'],
      [q(6 * 1024, 0, 'BinarySI'), '6Ki', ''],
      [q(1001 * 1024 ** 3, 0, 'BinarySI'), '1001Gi', '1025024Mi'],
      [q(1024 ** 4, 0, 'BinarySI'), '1Ti', '1024Gi'],
      [q(5, 0, 'BinarySI'), '5', '5000m'],
      [q(500, -3, 'BinarySI'), '500m', '0.5'],
      [q(1, 9, 'DecimalSI'), '1G', '1000M'],
      [q(1000, 6, 'DecimalSI'), '1G', '0.001T'],
      [q(1000000, 3, 'DecimalSI'), '1G', ''],
      [q(1000000000, 0, 'DecimalSI'), '1G', ''],
      [q(1, -3, 'DecimalSI'), '1m', '1000u'],
      [q(80, -3, 'DecimalSI'), '80m', ''],
      [q(1080, -3, 'DecimalSI'), '1080m', '1.08'],
      [q(108, -2, 'DecimalSI'), '1080m', '1080000000n'],
      [q(10800, -4, 'DecimalSI'), '1080m', ''],
      [q(300, 6, 'DecimalSI'), '300M', ''],
      [q(1, 12, 'DecimalSI'), '1T', ''],
      [q(1, 18, 'DecimalSI'), '1E', ''],
      [q(1, 21, 'DecimalSI'), '1e21', '1000E'],
      [q(5, 21, 'DecimalSI'), '5e21', '5000E'],
      [q(1, 24, 'DecimalSI'), '1e24', '1000000E'],
      [q(1234567, 6, 'DecimalSI'), '1234567M', ''],
      [q(1234567, -3, 'BinarySI'), '1234567m', ''],
      [q(3, 3, 'DecimalSI'), '3k', ''],
      [q(1025, 0, 'BinarySI'), '1025', ''],
      [q(0, 0, 'DecimalSI'), '0', ''],
      [q(0, 0, 'BinarySI'), '0', ''],
      [q(1, 9, 'DecimalExponent'), '1e9', '.001e12'],
      [q(1, -3, 'DecimalExponent'), '1e-3', '0.001e0'],
      [q(1, -9, 'DecimalExponent'), '1e-9', '1000e-12'],
      [q(80, -3, 'DecimalExponent'), '80e-3', ''],
      [q(300, 6, 'DecimalExponent'), '300e6', ''],
      [q(1, 12, 'DecimalExponent'), '1e12', ''],
      [q(1, 3, 'DecimalExponent'), '1e3', ''],
      [q(3, 3, 'DecimalExponent'), '3e3', ''],
      [q(0, 0, 'DecimalExponent'), '0', '00'],
      [q(1, -9, 'DecimalSI'), '1n', ''],
      [q(80, -9, 'DecimalSI'), '80n', ''],
      [q(1080, -9, 'DecimalSI'), '1080n', ''],
      [q(108, -8, 'DecimalSI'), '1080n', ''],
      [q(10800, -10, 'DecimalSI'), '1080n', ''],
      [q(1, -6, 'DecimalSI'), '1u', ''],
      [q(80, -6, 'DecimalSI'), '80u', ''],
      [q(1080, -6, 'DecimalSI'), '1080u', ''],
    ];
    for (const [input, want, alternate] of cases) {
      assert.equal(formatQuantity(input), want);
      // The canonical text is kept on parse; an alternate spelling is not.
      assert.equal(parseQuantity(want).parsed, want, want);
      if (alternate) {
        const alt = parseQuantity(alternate);
        assert.equal(alt.parsed, undefined, alternate);
        assert.equal(formatQuantity(alt), want, alternate);
      }
      if (!isZeroQuantity(input)) assert.equal(formatQuantity(negQuantity(input)), `-${want}`);
    }
  });

  it('prints huge binary values with the largest suffix', () => {
    assert.equal(formatQuantity(q(2n ** 70n, 0, 'BinarySI')), '1024Ei');
    assert.equal(formatQuantity(q(2n ** 63n, 0, 'BinarySI')), '8Ei');
  });

  it('serializes through toString and JSON', () => {
    assert.equal(String(parseQuantity('1.5Gi')), '1536Mi');
    assert.equal(JSON.stringify({ cpu: parseQuantity('0.5') }), '{"cpu":"500m"}');
    assert.equal(`${newQuantity(1024, 'BinarySI')}`, '1Ki');
  });
});

describe('arithmetic', () => {
  it('compares exactly (upstream TestQuantityCmp)', () => {
    const cases: [string, string, number][] = [
      ['0', '0', 0],
      ['100m', '50m', 1],
      ['50m', '100m', -1],
      ['10000T', '100Gi', 1],
      ['1Gi', '1073741824', 0],
      ['1G', '1Gi', -1],
      ['0.1', '100m', 0],
      ['-1', '0', -1],
      ['-1Ki', '-1k', -1],
      ['1e100', '9Ei', 1],
      ['1n', '0', 1],
      ['1000000000000000000001', '1000000000000000000000', 1],
    ];
    for (const [a, b, want] of cases) {
      assert.equal(compareQuantity(parseQuantity(a), parseQuantity(b)), want, `${a} vs ${b}`);
      assert.equal(
        compareQuantity(parseQuantity(b), parseQuantity(a)),
        want === 0 ? 0 : -want,
        `${b} vs ${a}`,
      );
    }
    assert.equal(equalQuantity(parseQuantity('1.5Gi'), parseQuantity('1536Mi')), true);
  });

  it('adds and subtracts exactly, keeping the first non-zero operand’s format', () => {
    assert.equal(formatQuantity(addQuantity(parseQuantity('100m'), parseQuantity('200m'))), '300m');
    assert.equal(formatQuantity(addQuantity(parseQuantity('0.1'), parseQuantity('0.2'))), '300m');
    assert.equal(formatQuantity(addQuantity(parseQuantity('1Gi'), parseQuantity('512Mi'))), '1536Mi');
    assert.equal(formatQuantity(addQuantity(parseQuantity('1'), parseQuantity('1Ki'))), '1025');
    assert.equal(addQuantity(parseQuantity('10'), parseQuantity('1Ki')).format, 'DecimalSI');
    assert.equal(addQuantity(parseQuantity('0'), parseQuantity('1Ki')).format, 'BinarySI');
    assert.equal(formatQuantity(subQuantity(parseQuantity('1'), parseQuantity('100m'))), '900m');
    assert.equal(formatQuantity(subQuantity(parseQuantity('0'), parseQuantity('1Gi'))), '-1Gi');
    assert.equal(formatQuantity(subQuantity(parseQuantity('1Gi'), parseQuantity('1Gi'))), '0');
    // Upstream TestQuantityAddZeroPreservesSuffix / SubZero.
    for (const s of ['100m', '1Gi']) {
      assert.equal(formatQuantity(addQuantity(parseQuantity(s), parseQuantity('0'))), s);
      assert.equal(formatQuantity(addQuantity(parseQuantity('0'), parseQuantity(s))), s);
      assert.equal(formatQuantity(subQuantity(parseQuantity(s), parseQuantity('0'))), s);
      assert.equal(formatQuantity(subQuantity(parseQuantity('0'), parseQuantity(s))), `-${s}`);
    }
    let total = parseQuantity('0');
    for (let i = 0; i < 10; i++) total = addQuantity(total, parseQuantity('0.1'));
    assert.equal(formatQuantity(total), '1');
    assert.equal(
      formatQuantity(addQuantity(parseQuantity('9Ei'), parseQuantity('9Ei'))),
      '18446744073709551614',
    );
  });

  it('negates and multiplies', () => {
    assert.equal(formatQuantity(negQuantity(q(901, -2, 'DecimalSI'))), '-9010m');
    assert.equal(formatQuantity(negQuantity(negQuantity(parseQuantity('1.5Gi')))), '1536Mi');
    assert.equal(formatQuantity(mulQuantity(parseQuantity('250m'), 4)), '1');
    assert.equal(formatQuantity(mulQuantity(parseQuantity('1Gi'), -2n)), '-2Gi');
    assert.throws(() => mulQuantity(parseQuantity('1'), 1.5), RangeError);
    assert.equal(quantitySign(parseQuantity('-1m')), -1);
    assert.equal(quantitySign(parseQuantity('0Ki')), 0);
  });

  it('converts to integers rounding away from zero', () => {
    assert.equal(milliValue(parseQuantity('100m')), 100n);
    assert.equal(milliValue(parseQuantity('1.5')), 1500n);
    assert.equal(milliValue(parseQuantity('1n')), 1n);
    assert.equal(milliValue(parseQuantity('1Ei')), 1152921504606846976000n);
    assert.equal(value(parseQuantity('1.5Gi')), 1610612736n);
    assert.equal(value(parseQuantity('100m')), 1n);
    assert.equal(value(parseQuantity('2')), 2n);
    assert.equal(value(parseQuantity('-1.5')), -2n);
    assert.equal(value(parseQuantity('1e3')), 1000n);
    // Upstream TestScaledValue.
    const scales: [number, number, bigint][] = [
      [-9, -9, 1n],
      [-9, -6, 1n],
      [-9, -3, 1n],
      [-9, 0, 1n],
      [-6, -9, 1000n],
      [-6, -6, 1n],
      [-6, -3, 1n],
      [-6, 0, 1n],
      [-3, -9, 1000000n],
      [-3, -6, 1000n],
      [-3, -3, 1n],
      [-3, 0, 1n],
      [0, -9, 1000000000n],
      [0, -6, 1000000n],
      [0, -3, 1000n],
      [0, 0, 1n],
      [2, -2, 10000n],
    ];
    for (const [from, to, want] of scales)
      assert.equal(scaledValue(newScaledQuantity(1, from), to), want, `${from}->${to}`);
  });

  it('converts to floats', () => {
    assert.equal(quantityToNumber(parseQuantity('2Ki')), 2048);
    assert.equal(quantityToNumber(parseQuantity('1.1Ki')), 1126.4);
    assert.equal(quantityToNumber(parseQuantity('1Mi')), 1048576);
    assert.equal(quantityToNumber(parseQuantity('100m')), 0.1);
    assert.equal(quantityToNumber(parseQuantity('-0.3')), -0.3);
    assert.equal(quantityToNumber(parseQuantity('12E')), 1.2e19);
    assert.equal(quantityToNumber(q(12, 500, 'DecimalSI')), Number.POSITIVE_INFINITY);
    assert.equal(quantityToNumber(q(-12, 500, 'DecimalSI')), Number.NEGATIVE_INFINITY);
  });

  it('builds quantities like upstream’s constructors', () => {
    const cases: [Quantity, string][] = [
      [newQuantity(1, 'DecimalSI'), '1'],
      [newQuantity(1000, 'DecimalSI'), '1k'],
      [newQuantity(1234000, 'DecimalSI'), '1234k'],
      [newQuantity(1024, 'BinarySI'), '1Ki'],
      [newQuantity(1000000, 'DecimalExponent'), '1e6'],
      [newQuantity(1024 * 1024, 'BinarySI'), '1Mi'],
      [newMilliQuantity(1, 'DecimalSI'), '1m'],
      [newMilliQuantity(1000, 'DecimalSI'), '1'],
      [newMilliQuantity(1234000, 'DecimalSI'), '1234'],
      [newMilliQuantity(1024, 'BinarySI'), '1024m'],
      [newMilliQuantity(1000000, 'DecimalExponent'), '1e3'],
      [newMilliQuantity(1024 * 1024, 'BinarySI'), '1048576m'],
      [newScaledQuantity(1, -9), '1n'],
      [newScaledQuantity(1000, -9), '1u'],
      [newScaledQuantity(1000, -3), '1'],
      [newScaledQuantity(0, -3), '0'],
    ];
    for (const [got, want] of cases) {
      assert.equal(formatQuantity(got), want);
      assert.equal(compareQuantity(parseQuantity(want), got), 0, want);
    }
    assert.throws(() => newQuantity(0.5, 'DecimalSI'), RangeError);
  });
});
