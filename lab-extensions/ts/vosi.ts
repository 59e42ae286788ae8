/**
 * Parsing of the TAP service's VOSI `tables` document (IVOA VOSI-Tables 1.1)
 * and the filtering and ADQL generation the catalog browser needs.
 *
 * Pure functions over DOM `Document`s, so they are unit-tested in jsdom.
 */

export interface IColumn {
  name: string;
  description: string;
  unit: string;
  ucd: string;
  datatype: string;
}

export interface ITable {
  name: string;
  description: string;
  columns: IColumn[];
}

export interface ISchema {
  name: string;
  description: string;
  tables: ITable[];
}

/** Direct children of `parent` with the given local name (namespaces ignored). */
function children(parent: Element, localName: string): Element[] {
  return Array.from(parent.children).filter(child => child.localName === localName);
}

/** Text of the first direct child with the given local name, trimmed. */
function childText(parent: Element, localName: string): string {
  const found = children(parent, localName)[0];
  return (found?.textContent ?? '').trim();
}

function parseColumn(element: Element): IColumn {
  return {
    name: childText(element, 'name'),
    description: childText(element, 'description'),
    unit: childText(element, 'unit'),
    ucd: childText(element, 'ucd'),
    datatype: childText(element, 'dataType')
  };
}

function parseTable(element: Element): ITable {
  return {
    name: childText(element, 'name'),
    description: childText(element, 'description'),
    columns: children(element, 'column').map(parseColumn)
  };
}

/**
 * Parse a VOSI `tableset` (or a single `table`) document.
 *
 * Throws an Error saying what is wrong when the text is not a VOSI document.
 */
export function parseTableset(xml: string): ISchema[] {
  const doc = new DOMParser().parseFromString(xml, 'application/xml');
  const root = doc.documentElement;
  if (!root || root.localName === 'parsererror' || doc.getElementsByTagName('parsererror').length) {
    throw new Error('The TAP service answered with a tables document that is not valid XML.');
  }
  if (root.localName === 'table') {
    return [{ name: '', description: '', tables: [parseTable(root)] }];
  }
  if (root.localName !== 'tableset') {
    throw new Error(
      `The TAP service's tables document starts with <${root.localName}>, not a VOSI <tableset>.`
    );
  }
  return children(root, 'schema').map(schema => ({
    name: childText(schema, 'name'),
    description: childText(schema, 'description'),
    tables: children(schema, 'table').map(parseTable)
  }));
}

function matches(text: string, needle: string): boolean {
  return text.toLowerCase().includes(needle);
}

/**
 * Tables and columns matching a filter text (case-insensitive).
 *
 * A table whose name or description matches keeps all its columns; otherwise
 * it is kept with only the columns whose name, description, unit or UCD
 * match. Schemas with nothing left are dropped. An empty filter keeps all.
 */
export function filterSchemas(schemas: ISchema[], filter: string): ISchema[] {
  const needle = filter.trim().toLowerCase();
  if (!needle) {
    return schemas;
  }
  const result: ISchema[] = [];
  for (const schema of schemas) {
    const tables: ITable[] = [];
    for (const table of schema.tables) {
      if (matches(table.name, needle) || matches(table.description, needle)) {
        tables.push(table);
        continue;
      }
      const columns = table.columns.filter(
        column =>
          matches(column.name, needle) ||
          matches(column.description, needle) ||
          matches(column.unit, needle) ||
          matches(column.ucd, needle)
      );
      if (columns.length) {
        tables.push({ ...table, columns });
      }
    }
    if (tables.length) {
      result.push({ ...schema, tables });
    }
  }
  return result;
}

/** Quote an ADQL identifier when it is not a plain regular identifier. */
export function adqlIdentifier(name: string): string {
  if (/^[A-Za-z][A-Za-z0-9_]*$/.test(name) || /^"([^"]|"")+"$/.test(name)) {
    return name; // regular, or already delimited by the service ("size", "_healpix_29")
  }
  return `"${name.replace(/"/g, '""')}"`;
}

function findByUcd(columns: IColumn[], ucd: string): IColumn | undefined {
  const wanted = columns.filter(column => column.ucd.toLowerCase().split(';').includes(ucd));
  return wanted.find(column => column.ucd.toLowerCase().includes('meta.main')) ?? wanted[0];
}

/**
 * A ready ADQL query for a table: the chosen columns (default: the first
 * ten), TOP 10, and a cone around the table's main position when it has
 * columns with the `pos.eq.ra` / `pos.eq.dec` UCDs.
 */
export function adqlQuery(table: ITable, columns?: IColumn[], limit = 10): string {
  const chosen = (columns && columns.length ? columns : table.columns.slice(0, 10)).map(column =>
    adqlIdentifier(column.name)
  );
  const select = chosen.length ? chosen.join(', ') : '*';
  const lines = [`SELECT TOP ${limit} ${select}`, `FROM ${table.name}`];
  const ra = findByUcd(table.columns, 'pos.eq.ra');
  const dec = findByUcd(table.columns, 'pos.eq.dec');
  if (ra && dec) {
    lines.push(
      `-- WHERE CONTAINS(POINT('ICRS', ${adqlIdentifier(ra.name)}, ${adqlIdentifier(dec.name)}),`,
      "--                CIRCLE('ICRS', 62.0, -37.0, 0.1)) = 1"
    );
  }
  return lines.join('\n');
}

/** Python for a notebook cell that runs `query` on the platform's TAP service. */
export function queryCellSource(query: string): string {
  const quoted = query.replace(/\\/g, '\\\\').replace(/"""/g, '\\"\\"\\"');
  return [
    'from skydeck.lab import get_tap_service',
    '',
    `query = """`,
    quoted,
    '"""',
    'results = get_tap_service().search(query).to_table()',
    'results'
  ].join('\n');
}
