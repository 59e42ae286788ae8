import { describe, expect, it } from 'vitest';

import { adqlIdentifier, adqlQuery, filterSchemas, parseTableset, queryCellSource } from '../ts/vosi';
import { TABLESET } from './fixtures';

describe('parseTableset', () => {
  it('reads schemas, tables and columns with unit, UCD and description', () => {
    const schemas = parseTableset(TABLESET);
    expect(schemas.map(s => s.name)).toEqual(['dp02_dc2_catalogs', 'TAP_SCHEMA']);
    const object = schemas[0].tables[0];
    expect(object.name).toBe('dp02_dc2_catalogs.Object');
    expect(object.description).toBe('Coadd objects');
    expect(object.columns).toHaveLength(4);
    expect(object.columns[1]).toEqual({
      name: 'coord_ra',
      description: 'Right ascension',
      unit: 'deg',
      ucd: 'pos.eq.ra;meta.main',
      datatype: 'DOUBLE'
    });
    expect(schemas[0].tables[1].columns[0].unit).toBe('');
  });

  it('accepts a single <table> document', () => {
    const schemas = parseTableset('<table><name>t</name><column><name>c</name></column></table>');
    expect(schemas[0].tables[0].columns[0].name).toBe('c');
  });

  it('says what is wrong with a document that is not VOSI', () => {
    expect(() => parseTableset('<html><body>Login</body></html>')).toThrow(/not a VOSI <tableset>/);
    expect(() => parseTableset('not xml at all <')).toThrow(/not valid XML/);
  });
});

describe('filterSchemas', () => {
  const schemas = parseTableset(TABLESET);

  it('keeps everything for an empty filter', () => {
    expect(filterSchemas(schemas, '  ')).toBe(schemas);
  });

  it('keeps a whole table whose name matches', () => {
    const result = filterSchemas(schemas, 'visit');
    expect(result).toHaveLength(1);
    expect(result[0].tables.map(t => t.name)).toEqual(['dp02_dc2_catalogs.Visit']);
    expect(result[0].tables[0].columns).toHaveLength(2);
  });

  it('keeps only matching columns by name, unit or UCD, case-insensitively', () => {
    const byUnit = filterSchemas(schemas, 'NJY');
    expect(byUnit[0].tables[0].columns.map(c => c.name)).toEqual(['g_psfFlux']);
    const byUcd = filterSchemas(schemas, 'pos.eq');
    expect(byUcd[0].tables[0].columns.map(c => c.name)).toEqual(['coord_ra', 'coord_dec']);
  });

  it('drops schemas with nothing left', () => {
    expect(filterSchemas(schemas, 'no-such-thing')).toEqual([]);
  });
});

describe('ADQL generation', () => {
  const object = parseTableset(TABLESET)[0].tables[0];

  it('quotes identifiers only when needed', () => {
    expect(adqlIdentifier('coord_ra')).toBe('coord_ra');
    expect(adqlIdentifier('size')).toBe('size');
    expect(adqlIdentifier('my col')).toBe('"my col"');
    expect(adqlIdentifier('1st')).toBe('"1st"');
    expect(adqlIdentifier('"size"')).toBe('"size"');
    expect(adqlIdentifier('"_healpix_29"')).toBe('"_healpix_29"');
  });

  it('selects columns with TOP and suggests a cone on the main position', () => {
    const query = adqlQuery(object);
    expect(query.split('\n')[0]).toBe('SELECT TOP 10 objectId, coord_ra, coord_dec, g_psfFlux');
    expect(query).toContain('FROM dp02_dc2_catalogs.Object');
    expect(query).toContain("POINT('ICRS', coord_ra, coord_dec)");
  });

  it('has no cone for a table without positions', () => {
    const visit = parseTableset(TABLESET)[0].tables[1];
    expect(adqlQuery(visit, undefined, 5)).toBe('SELECT TOP 5 visit, band\nFROM dp02_dc2_catalogs.Visit');
  });

  it('wraps the query in a runnable cell', () => {
    const cell = queryCellSource('SELECT 1 -- """ tricky');
    expect(cell).toContain('from skydeck.lab import get_tap_service');
    expect(cell).toContain('get_tap_service().search(query)');
    expect(cell).toContain('SELECT 1 -- \\"\\"\\" tricky');
  });
});
