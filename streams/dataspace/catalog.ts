/**
 * The public catalogue: JSON-LD after DCAT-AP 3 and its health extension HealthDCAT-AP, one
 * dcat:Dataset per dataset, so a national data catalogue (HealthData@EU) can harvest it.
 *
 * Record counts and temporal coverage come from InfluxDB (one aggregate query and two one-row
 * queries per measurement, cached for catalogCacheMs so a public endpoint cannot be used to load
 * the database). Coverage is given at day precision: the exact first and last instants would
 * say when a given transport happened. Without InfluxDB both are stated as unknown.
 */
import { DATASET_NAMES, DATASETS, grantableFields, type DatasetName } from './datasets.js'
import { ident, type InfluxReader } from './influx-reader.js'

export interface CatalogInfo {
  /** Public base URL the distributions are reached at (no trailing slash), from configuration; '' gives relative URLs. Never the request's Host. */
  baseUrl: string
  publisher: string
  contactEmail: string
  k: number
  /** The health data access body that grants permits for these datasets (HealthDCAT-AP `healthdcatap:hdab`). */
  hdab?: { name?: string | undefined, url?: string | undefined }
  /** ISO 3166-1 alpha-3 code of the country the data come from (`dct:spatial`), e.g. FRA. */
  country?: string | undefined
  /** This connector's Dataspace Protocol endpoint (`<public>/dsp/2025-1`), given as the datasets' access service. */
  dspEndpoint?: string | undefined
}

interface DatasetStats { records: number, firstUs: number | null, lastUs: number | null, encounters: number | null }
type Stats = { known: true, at: number, byDataset: Record<DatasetName, DatasetStats> } | { known: false, reason: string }

const EHDS_ELI = 'http://data.europa.eu/eli/reg/2025/327/oj'
const ACCESS_RESTRICTED = 'http://publications.europa.eu/resource/authority/access-right/RESTRICTED'
const FILE_TYPE = 'http://publications.europa.eu/resource/authority/file-type/'
const IANA = 'https://www.iana.org/assignments/media-types/'
/** EU data theme "Health" (DCAT-AP's mandatory dcat:theme vocabulary). */
const THEME_HEALTH = 'http://publications.europa.eu/resource/authority/data-theme/HEAL'
const COUNTRY = 'http://publications.europa.eu/resource/authority/country/'
const DSP_SPEC = 'https://eclipse-dataspace-protocol-base.github.io/DataspaceProtocol/2025-1/'

const CONTEXT = {
  dcat: 'http://www.w3.org/ns/dcat#',
  dct: 'http://purl.org/dc/terms/',
  dcatap: 'http://data.europa.eu/r5r/',
  healthdcatap: 'http://healthdataportal.eu/ns/health#',
  dpv: 'https://w3id.org/dpv#',
  foaf: 'http://xmlns.com/foaf/0.1/',
  vcard: 'http://www.w3.org/2006/vcard/ns#',
  rdfs: 'http://www.w3.org/2000/01/rdf-schema#',
  skos: 'http://www.w3.org/2004/02/skos/core#',
  xsd: 'http://www.w3.org/2001/XMLSchema#'
}

const PURPOSE = 'Secondary use under a data permit for the purposes of EHDS Art. 53(1), in particular scientific research and the improvement of pre-hospital cardiac and stroke care; the uses prohibited by Art. 54 are excluded.'
const LEGAL_BASIS = 'Regulation (EU) 2025/327 (European Health Data Space), Chapter IV: access under a data permit (Art. 68), data anonymised by default and pseudonymised only where the permit requires it (Art. 66); GDPR Art. 9(2)(i)/(j).'

const en = (value: string): { '@value': string, '@language': string } => ({ '@value': value, '@language': 'en' })
const date = (us: number): { '@value': string, '@type': string } => ({ '@value': new Date(Math.floor(us / 1000)).toISOString().slice(0, 10), '@type': 'xsd:date' })

export class Catalog {
  private cache: Stats | null = null
  private loading: Promise<Stats> | null = null
  /** After a failed load, no query before this time; the wait doubles with each failure. */
  private retryAt = 0
  private backoffMs = 0
  /** Count queries sent to InfluxDB (for tests and the operator: the public endpoint's cost). */
  loads = 0

  constructor (private readonly reader: InfluxReader | null, private readonly cacheMs: number, private readonly now: () => number = Date.now) {}

  /**
   * Counts and coverage: at most one load in flight, a success kept for cacheMs, a failure kept
   * with exponential backoff (5 s doubling to 10 min) and the last good figures served meanwhile,
   * so no number of public requests can make InfluxDB scan more often than that (issue #10, 16).
   */
  private async stats (): Promise<Stats> {
    if (this.reader === null) return { known: false, reason: 'no InfluxDB is configured (INFLUX_URL): record counts and temporal coverage are unknown' }
    const now = this.now()
    if (this.cache !== null && this.cache.known && now - this.cache.at < this.cacheMs) return this.cache
    if (this.cache !== null && now < this.retryAt) return this.cache
    this.loading ??= this.load(this.reader).then(fresh => {
      if (fresh.known) {
        this.backoffMs = 0
        this.retryAt = 0
        this.cache = fresh
      } else {
        this.backoffMs = Math.min(this.backoffMs === 0 ? 5000 : this.backoffMs * 2, 600_000)
        this.retryAt = this.now() + this.backoffMs
        // Keep serving the last good figures, if any.
        if (this.cache === null || !this.cache.known) this.cache = fresh
      }
      return this.cache
    }).finally(() => { this.loading = null })
    return await this.loading
  }

  private async load (reader: InfluxReader): Promise<Stats> {
    this.loads++
    try {
      const byDataset = {} as Record<DatasetName, DatasetStats>
      for (const name of DATASET_NAMES) {
        const m = ident(DATASETS[name].measurement)
        const counts = await reader.all(`SELECT count(*) FROM ${m}`)
        let records = 0
        for (const s of counts) for (const row of s.values) for (const v of row.slice(1)) if (typeof v === 'number' && v > records) records = v
        const first = await reader.all(`SELECT * FROM ${m} ORDER BY time ASC LIMIT 1`)
        const last = await reader.all(`SELECT * FROM ${m} ORDER BY time DESC LIMIT 1`)
        const t = (s: typeof first): number | null => typeof s[0]?.values[0]?.[0] === 'number' ? s[0].values[0][0] as number : null
        byDataset[name] = { records, firstUs: t(first), lastUs: t(last), encounters: await encounterCount(reader, m) }
      }
      return { known: true, at: this.now(), byDataset }
    } catch (err) {
      return { known: false, reason: `InfluxDB did not answer (${(err as Error).message.slice(0, 120)}): record counts and temporal coverage are unknown` }
    }
  }

  /** The catalogue document. */
  async document (info: CatalogInfo): Promise<Record<string, unknown>> {
    const stats = await this.stats()
    const base = info.baseUrl
    const publisher = { '@type': ['foaf:Agent', 'foaf:Organization'], 'foaf:name': info.publisher }
    const contact = { '@type': 'vcard:Kind', 'vcard:fn': info.publisher, 'vcard:hasEmail': { '@id': `mailto:${info.contactEmail}` } }
    const hdab: Record<string, unknown> = { '@type': 'foaf:Agent', 'foaf:name': info.hdab?.name ?? 'not configured (DATASPACE_HDAB_NAME)' }
    if (info.hdab?.url !== undefined) hdab['foaf:homepage'] = { '@id': info.hdab.url }
    const datasets = DATASET_NAMES.map(name => {
      const ds = DATASETS[name]
      const st = stats.known ? stats.byDataset[name] : null
      const distributions: Array<Record<string, unknown>> = [
        distribution(`${base}/dataspace/extract?dataset=${name}&format=ndjson`, `${ds.title}: extract, NDJSON`, 'JSON', null),
        distribution(`${base}/dataspace/extract?dataset=${name}&format=csv`, `${ds.title}: extract, CSV`, 'CSV', 'text/csv')
      ]
      if (ds.fhir) distributions.push(distribution(`${base}/dataspace/extract?dataset=${name}&format=fhir`, `${ds.title}: extract, FHIR R4 Bundle`, 'JSON', 'application/fhir+json'))
      if (ds.live) distributions.push(distribution(`${base.replace(/^http/, 'ws')}/dataspace/stream?dataset=${name}`, `${ds.title}: live stream (WebSocket, JSON messages)`, 'JSON', null))
      const out: Record<string, unknown> = {
        '@id': `${base}/dataspace/catalog#${name}`,
        '@type': 'dcat:Dataset',
        'dct:identifier': name,
        'dct:title': en(ds.title),
        'dct:description': en(`${ds.description} Fields a permit may grant: ${grantableFields(name).join(', ')}. Released anonymised by default (pseudonyms per permit, times shifted per encounter, ages in bands, positions on a ~1 km grid, k-anonymity with k = ${info.k}), pseudonymised only where the permit says so.`),
        'dcat:keyword': ds.keywords.map(en),
        'dct:accessRights': { '@id': ACCESS_RESTRICTED },
        'dcatap:applicableLegislation': { '@id': EHDS_ELI },
        'dpv:hasPurpose': { '@type': 'dpv:Purpose', 'dct:description': en(PURPOSE) },
        'dpv:hasLegalBasis': { '@type': 'dpv:LegalBasis', 'dct:description': en(LEGAL_BASIS) },
        'dct:publisher': publisher,
        'dcat:contactPoint': contact,
        'dcat:distribution': distributions,
        'dcat:theme': { '@id': THEME_HEALTH },
        'healthdcatap:healthCategory': HEALTH_CATEGORY,
        'healthdcatap:hdab': hdab,
        'healthdcatap:hasStructuredData': { '@value': 'true', '@type': 'xsd:boolean' },
        'dct:provenance': { '@type': 'dct:ProvenanceStatement', 'rdfs:label': en('Recorded by ambulance monitors and defibrillators, received and validated by the Ambulink gateway of the data holder, stored in its time-series database.') }
      }
      if (info.country !== undefined) out['dct:spatial'] = { '@id': COUNTRY + info.country }
      if (info.dspEndpoint !== undefined) {
        distributions.push({
          '@type': 'dcat:Distribution',
          'dct:title': en(`${ds.title}: Dataspace Protocol 2025-1 (contract negotiation, HTTP pull)`),
          'dcat:accessURL': { '@id': info.dspEndpoint },
          'dcat:mediaType': { '@id': IANA + 'application/json' },
          'dcatap:applicableLegislation': { '@id': EHDS_ELI },
          'dcat:accessService': { '@type': 'dcat:DataService', 'dcat:endpointURL': { '@id': info.dspEndpoint }, 'dct:conformsTo': { '@id': DSP_SPEC } }
        })
      }
      if (st !== null) {
        out['healthdcatap:numberOfRecords'] = { '@value': String(st.records), '@type': 'xsd:nonNegativeInteger' }
        if (st.firstUs !== null && st.lastUs !== null) {
          out['dct:temporal'] = { '@type': 'dct:PeriodOfTime', 'dcat:startDate': date(st.firstUs), 'dcat:endDate': date(st.lastUs) }
          // Day precision, as the coverage: first data published, last data added.
          out['dct:issued'] = date(st.firstUs)
          out['dct:modified'] = date(st.lastUs)
        }
        // Encounters (an upper bound on individuals). A count of people from 1 to k-1 is never
        // published, as for extracts: "how many were transported" can itself disclose someone.
        if (st.encounters !== null && (st.encounters === 0 || st.encounters >= info.k)) {
          out['healthdcatap:numberOfUniqueIndividuals'] = { '@value': String(st.encounters), '@type': 'xsd:nonNegativeInteger' }
        }
      } else {
        out['rdfs:comment'] = en(stats.known ? 'statistics unknown' : stats.reason)
      }
      return out
    })
    return {
      '@context': CONTEXT,
      '@id': `${base}/dataspace/catalog`,
      '@type': 'dcat:Catalog',
      'dct:title': en('Ambulink pre-hospital telemetry'),
      'dct:description': en('Telemetry recorded in ambulances during emergency cardiac and stroke transports, offered for secondary use under the European Health Data Space.'),
      'dct:publisher': publisher,
      'dcat:contactPoint': contact,
      'dcatap:applicableLegislation': { '@id': EHDS_ELI },
      'dcat:dataset': datasets
    }
  }
}

/**
 * The EHDS category of these datasets (Regulation (EU) 2025/327, Art. 51, minimum categories of
 * electronic health data for secondary use): data from medical devices. A SKOS concept of its
 * own: the HealthDCAT-AP controlled vocabulary's IRIs were not available to check against.
 */
const HEALTH_CATEGORY = { '@type': 'skos:Concept', 'skos:prefLabel': en('Electronic health data from medical devices (EHDS Art. 51)') }

/** Distinct encounters in a measurement (exact, from the series index), or null when the store cannot say. */
async function encounterCount (reader: InfluxReader, m: string): Promise<number | null> {
  try {
    const s = await reader.all(`SHOW TAG VALUES EXACT CARDINALITY FROM ${m} WITH KEY = "encounter"`)
    const v = s[0]?.values[0]?.[0]
    return typeof v === 'number' ? v : 0
  } catch {
    return null
  }
}

function distribution (url: string, title: string, fileType: string, mediaType: string | null): Record<string, unknown> {
  const d: Record<string, unknown> = {
    '@type': 'dcat:Distribution',
    'dcatap:applicableLegislation': { '@id': EHDS_ELI },
    'dct:title': en(title),
    'dcat:accessURL': { '@id': url },
    'dct:format': { '@id': FILE_TYPE + fileType }
  }
  if (mediaType !== null) d['dcat:mediaType'] = { '@id': IANA + mediaType }
  return d
}
