// Kubernetes' CEL extension libraries (k8s.io/apiserver pkg/cel/library),
// those that admission policies and CRD rules use, added to an environment.

import type { Environment } from '@marcbachmann/cel-js';
import { registerIP } from './ip.ts';
import { registerLists } from './lists.ts';
import { registerQuantity } from './quantity.ts';
import { registerRegex } from './regex.ts';
import { registerStrings } from './strings.ts';
import { registerURLs } from './urls.ts';

export function registerKubernetesLibraries(env: Environment): void {
  registerLists(env);
  registerStrings(env);
  registerRegex(env);
  registerQuantity(env);
  registerURLs(env);
  registerIP(env);
}
