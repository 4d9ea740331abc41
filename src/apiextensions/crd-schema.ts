// The OpenAPI schema of CustomResourceDefinition itself, for `kubectl
// explain crd` and clients reading /openapi. The type model (protobuf
// descriptors of k8s.io/api) has no apiextensions messages, so it is
// written out here, with upstream's field descriptions shortened. The
// schemas inside versions are free-form (JSONSchemaProps is recursive).

const str = (description: string) => ({ type: 'string', description });
const strings = (description: string) => ({ type: 'array', items: { type: 'string' }, description });
const free = (description: string) => ({
  type: 'object',
  description,
  'x-kubernetes-preserve-unknown-fields': true,
});

const names = {
  type: 'object',
  description: 'CustomResourceDefinitionNames indicates the names to serve this CustomResourceDefinition',
  required: ['plural', 'kind'],
  properties: {
    plural: str(
      'plural is the plural name of the resource to serve, the URL segment: /apis/<group>/<version>/.../<plural>.',
    ),
    singular: str('singular is the singular name of the resource. Defaults to the lowercased `kind`.'),
    kind: str('kind is the serialized kind of the resource. It is normally CamelCase and singular.'),
    listKind: str('listKind is the serialized kind of the list for this resource. Defaults to "`kind`List".'),
    shortNames: strings('shortNames are short names for the resource, exposed in API discovery documents.'),
    categories: strings(
      "categories is a list of grouped resources this custom resource belongs to (e.g. 'all').",
    ),
  },
};

const version = {
  type: 'object',
  description: 'CustomResourceDefinitionVersion describes a version for CRD.',
  required: ['name', 'served', 'storage'],
  properties: {
    name: str('name is the version name, e.g. “v1”, “v2beta1”, etc.'),
    served: {
      type: 'boolean',
      description: 'served is a flag enabling/disabling this version from being served via REST APIs',
    },
    storage: {
      type: 'boolean',
      description:
        'storage indicates this version should be used when persisting custom resources to storage. There must be exactly one version with storage=true.',
    },
    deprecated: {
      type: 'boolean',
      description: 'deprecated indicates this version of the custom resource API is deprecated.',
    },
    deprecationWarning: str('deprecationWarning overrides the default warning returned to API clients.'),
    schema: {
      type: 'object',
      description:
        'schema describes the schema used for validation, pruning, and defaulting of this version of the custom resource.',
      properties: {
        openAPIV3Schema: free('openAPIV3Schema is the OpenAPI v3 schema to use for validation and pruning.'),
      },
    },
    subresources: free(
      'subresources specify what subresources this version of the defined custom resource have.',
    ),
    additionalPrinterColumns: {
      type: 'array',
      description: 'additionalPrinterColumns specifies additional columns returned in Table output.',
      items: {
        type: 'object',
        required: ['name', 'type', 'jsonPath'],
        properties: {
          name: str('name is a human readable name for the column.'),
          type: str('type is an OpenAPI type definition for this column.'),
          format: str('format is an optional OpenAPI type definition for this column.'),
          description: str('description is a human readable description of this column.'),
          priority: {
            type: 'integer',
            format: 'int32',
            description:
              'priority is an integer defining the relative importance of this column compared to others.',
          },
          jsonPath: str(
            'jsonPath is a simple JSON path (i.e. with array notation) which is evaluated against each custom resource to produce the value for this column.',
          ),
        },
      },
    },
    selectableFields: {
      type: 'array',
      description: 'selectableFields specifies paths to fields that may be used as field selectors.',
      items: {
        type: 'object',
        required: ['jsonPath'],
        properties: {
          jsonPath: str(
            'jsonPath is a simple JSON path which is evaluated against each custom resource to produce a field selector value.',
          ),
        },
      },
    },
  },
};

const condition = {
  type: 'object',
  required: ['type', 'status'],
  properties: {
    type: str('type is the type of the condition. Types include Established, NamesAccepted and Terminating.'),
    status: str('status is the status of the condition. Can be True, False, Unknown.'),
    lastTransitionTime: {
      type: 'string',
      format: 'date-time',
      description: 'lastTransitionTime last time the condition transitioned from one status to another.',
    },
    reason: str("reason is a unique, one-word, CamelCase reason for the condition's last transition."),
    message: str('message is a human-readable message indicating details about last transition.'),
  },
};

export const crdOpenAPISchema = {
  type: 'object',
  description:
    'CustomResourceDefinition represents a resource that should be exposed on the API server. Its name MUST be in the format <.spec.name>.<.spec.group>.',
  required: ['spec'],
  properties: {
    spec: {
      type: 'object',
      description: 'spec describes how the user wants the resources to appear',
      required: ['group', 'names', 'scope', 'versions'],
      properties: {
        group: str('group is the API group of the defined custom resource.'),
        names: names,
        scope: str(
          'scope indicates whether the defined custom resource is cluster- or namespace-scoped. Allowed values are `Cluster` and `Namespaced`.',
        ),
        versions: {
          type: 'array',
          description: 'versions is the list of all API versions of the defined custom resource.',
          items: version,
        },
        conversion: free('conversion defines conversion settings for the CRD.'),
        preserveUnknownFields: {
          type: 'boolean',
          description:
            'preserveUnknownFields indicates that object fields which are not specified in the OpenAPI schema should be preserved when persisting to storage.',
        },
      },
    },
    status: {
      type: 'object',
      description: 'status indicates the actual state of the CustomResourceDefinition',
      properties: {
        conditions: {
          type: 'array',
          description: 'conditions indicate state for particular aspects of a CustomResourceDefinition',
          items: condition,
        },
        acceptedNames: names,
        storedVersions: strings(
          'storedVersions lists all versions of CustomResources that were ever persisted.',
        ),
      },
    },
  },
};
