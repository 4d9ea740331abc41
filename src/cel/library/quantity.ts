// Kubernetes' quantity library (k8s.io/apiserver pkg/cel/library/quantity.go):
// quantity("1.5Gi"), isQuantity, and on a Quantity: sign, isInteger,
// asInteger, asApproximateFloat, add, sub, isGreaterThan, isLessThan,
// compareTo. The arithmetic is src/api/quantity.ts, the API's own.

import type { Environment } from '@marcbachmann/cel-js';
import {
  addQuantity,
  compareQuantity,
  newQuantity,
  parseQuantity,
  Quantity,
  quantitySign,
  quantityToNumber,
  scaledValue,
  subQuantity,
} from '../../api/quantity.ts';

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

function parse(s: string): Quantity {
  try {
    return parseQuantity(s);
  } catch (err) {
    throw new Error(`quantities must match the regular expression: ${(err as Error).message}`);
  }
}

function isInteger(q: Quantity): boolean {
  if (q.scale >= 0) return scaledValue(q, 0) <= INT64_MAX && scaledValue(q, 0) >= INT64_MIN;
  const v = scaledValue(q, 0);
  return compareQuantity(newQuantity(v, 'DecimalSI'), q) === 0 && v <= INT64_MAX && v >= INT64_MIN;
}

const asQuantity = (x: Quantity | bigint): Quantity =>
  typeof x === 'bigint' ? newQuantity(x, 'DecimalSI') : x;

export function registerQuantity(env: Environment): void {
  env.registerType('Quantity', Quantity);
  env.registerFunction('quantity(string): Quantity', parse);
  env.registerFunction('isQuantity(string): bool', (s: string) => {
    try {
      parseQuantity(s);
      return true;
    } catch {
      return false;
    }
  });
  env.registerFunction('Quantity.sign(): int', (q: Quantity) => BigInt(quantitySign(q)));
  env.registerFunction('Quantity.isInteger(): bool', isInteger);
  env.registerFunction('Quantity.asInteger(): int', (q: Quantity) => {
    if (!isInteger(q)) throw new Error('cannot convert value to integer');
    return scaledValue(q, 0);
  });
  env.registerFunction('Quantity.asApproximateFloat(): double', quantityToNumber);
  env.registerFunction('Quantity.add(Quantity): Quantity', (a: Quantity, b: Quantity) => addQuantity(a, b));
  env.registerFunction('Quantity.add(int): Quantity', (a: Quantity, b: bigint) =>
    addQuantity(a, asQuantity(b)),
  );
  env.registerFunction('Quantity.sub(Quantity): Quantity', (a: Quantity, b: Quantity) => subQuantity(a, b));
  env.registerFunction('Quantity.sub(int): Quantity', (a: Quantity, b: bigint) =>
    subQuantity(a, asQuantity(b)),
  );
  env.registerFunction(
    'Quantity.isGreaterThan(Quantity): bool',
    (a: Quantity, b: Quantity) => compareQuantity(a, b) > 0,
  );
  env.registerFunction(
    'Quantity.isLessThan(Quantity): bool',
    (a: Quantity, b: Quantity) => compareQuantity(a, b) < 0,
  );
  env.registerFunction('Quantity.compareTo(Quantity): int', (a: Quantity, b: Quantity) =>
    BigInt(compareQuantity(a, b)),
  );
  // Two quantities are equal when their values are (quantity("1") == quantity("1000m")).
  env.registerOperator('Quantity == Quantity', (a: Quantity, b: Quantity) => compareQuantity(a, b) === 0);
}
