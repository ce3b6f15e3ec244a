/**
 * The Dataspace Protocol catalogue (DSP 2025-1, Catalog Protocol): one `Dataset` per dataset,
 * each with its ODRL offers (`hasPolicy`) and one `Distribution` in the `HttpData-PULL` format
 * served by this connector's `DataService`. Public metadata only (no counts: those are in the
 * HealthDCAT-AP catalogue, with its cache). URLs come from configuration, never the request.
 */
import { DATASET_NAMES, DATASETS, type DatasetName } from '../datasets.js'
import { datasetId, offersOf } from './offers.js'
import { DSP_CONTEXT } from './validate.js'

/** The only transfer format offered: the consumer pulls the extract over HTTP. */
export const PULL_FORMAT = 'HttpData-PULL'

export interface DspCatalogInfo {
  participantId: string
  /** Absolute URL of the DSP base (`<root>/dsp/2025-1`), or a relative path when no public URL is set. */
  serviceUrl: string
}

const SERVICE_ID = 'urn:ambulink:dataservice:dsp'

function dataset (name: DatasetName): Record<string, unknown> {
  const d = DATASETS[name]
  return {
    '@id': datasetId(name),
    '@type': 'Dataset',
    'dct:title': d.title,
    'dct:description': d.description,
    'dct:identifier': name,
    hasPolicy: offersOf(name),
    distribution: [{ '@type': 'Distribution', format: PULL_FORMAT, accessService: SERVICE_ID }]
  }
}

export function dspCatalog (info: DspCatalogInfo): Record<string, unknown> {
  return {
    '@context': [DSP_CONTEXT],
    '@id': 'urn:ambulink:catalog:dsp',
    '@type': 'Catalog',
    participantId: info.participantId,
    service: [{ '@id': SERVICE_ID, '@type': 'DataService', endpointURL: info.serviceUrl }],
    dataset: DATASET_NAMES.map(dataset)
  }
}

/** One dataset as the answer to a dataset request (a root Dataset carries `@context`). */
export function dspDataset (name: DatasetName): Record<string, unknown> {
  return { '@context': [DSP_CONTEXT], ...dataset(name) }
}
