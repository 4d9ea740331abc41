// A CRD for tests: widgets.example.com, namespaced, with a structural
// schema (defaults, an enum, a minimum, a preserved free-form field),
// printer columns, selectable fields and the status and scale subresources.

import type { CustomResourceDefinition } from './types.ts';

export function widgetCRD(
  overrides: Partial<CustomResourceDefinition['spec']> = {},
): CustomResourceDefinition {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'widgets.example.com' },
    spec: {
      group: 'example.com',
      scope: 'Namespaced',
      names: {
        plural: 'widgets',
        singular: 'widget',
        kind: 'Widget',
        shortNames: ['wd'],
        categories: ['all'],
      },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: 'A Widget is a thing for tests.',
              properties: {
                spec: {
                  type: 'object',
                  description: 'What the widget should be.',
                  required: ['color'],
                  properties: {
                    color: {
                      type: 'string',
                      enum: ['red', 'blue'],
                      description: 'The colour of the widget.',
                    },
                    replicas: { type: 'integer', minimum: 0, default: 1 },
                    selector: { type: 'string' },
                    tags: { type: 'array', items: { type: 'string' }, 'x-kubernetes-list-type': 'set' },
                    port: { 'x-kubernetes-int-or-string': true },
                    extra: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
                  },
                },
                status: {
                  type: 'object',
                  properties: {
                    replicas: { type: 'integer' },
                    phase: { type: 'string' },
                    selector: { type: 'string' },
                  },
                },
              },
            },
          },
          subresources: {
            status: {},
            scale: {
              specReplicasPath: '.spec.replicas',
              statusReplicasPath: '.status.replicas',
              labelSelectorPath: '.status.selector',
            },
          },
          additionalPrinterColumns: [
            { name: 'Color', type: 'string', jsonPath: '.spec.color' },
            { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas' },
            { name: 'Phase', type: 'string', jsonPath: '.status.phase', priority: 1 },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          selectableFields: [{ jsonPath: '.spec.color' }],
        },
      ],
      ...overrides,
    },
  };
}
