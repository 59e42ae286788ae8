/** VOSI and UWS documents shaped like the TAP service's answers. */

export const TABLESET = `<?xml version="1.0" encoding="UTF-8"?>
<vosi:tableset xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0"
    xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <schema>
    <name>dp02_dc2_catalogs</name>
    <description>Data Preview 0.2 catalogs</description>
    <table type="table">
      <name>dp02_dc2_catalogs.Object</name>
      <description>Coadd objects</description>
      <column>
        <name>objectId</name><description>Unique id</description>
        <ucd>meta.id;src</ucd><dataType xsi:type="vs:TAPType">BIGINT</dataType>
      </column>
      <column>
        <name>coord_ra</name><description>Right ascension</description><unit>deg</unit>
        <ucd>pos.eq.ra;meta.main</ucd><dataType xsi:type="vs:TAPType">DOUBLE</dataType>
      </column>
      <column>
        <name>coord_dec</name><description>Declination</description><unit>deg</unit>
        <ucd>pos.eq.dec;meta.main</ucd><dataType xsi:type="vs:TAPType">DOUBLE</dataType>
      </column>
      <column>
        <name>g_psfFlux</name><description>PSF flux in g</description><unit>nJy</unit>
        <ucd>phot.flux;em.opt.B</ucd><dataType xsi:type="vs:TAPType">DOUBLE</dataType>
      </column>
    </table>
    <table type="table">
      <name>dp02_dc2_catalogs.Visit</name>
      <description>Visits of the survey</description>
      <column><name>visit</name><description>Visit id</description></column>
      <column><name>band</name><description>Filter band</description></column>
    </table>
  </schema>
  <schema>
    <name>TAP_SCHEMA</name>
    <table><name>TAP_SCHEMA.tables</name><column><name>table_name</name></column></table>
  </schema>
</vosi:tableset>`;

export const JOBS = `<?xml version="1.0" encoding="UTF-8"?>
<uws:jobs xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" xmlns:xlink="http://www.w3.org/1999/xlink" version="1.1">
  <uws:jobref id="older" xlink:href="http://127.0.0.1:8000/services/tap/async/older">
    <uws:phase>ERROR</uws:phase>
    <uws:creationTime>2026-11-24T10:00:00Z</uws:creationTime>
  </uws:jobref>
  <uws:jobref id="newer" xlink:href="http://127.0.0.1:8000/services/tap/async/newer">
    <uws:phase>COMPLETED</uws:phase>
    <uws:runId>cmd</uws:runId>
    <uws:creationTime>2026-11-25T09:30:00Z</uws:creationTime>
  </uws:jobref>
</uws:jobs>`;

export const JOB = `<?xml version="1.0" encoding="UTF-8"?>
<uws:job xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" xmlns:xlink="http://www.w3.org/1999/xlink" version="1.1">
  <uws:jobId>newer</uws:jobId>
  <uws:runId>cmd</uws:runId>
  <uws:ownerId>alice</uws:ownerId>
  <uws:phase>COMPLETED</uws:phase>
  <uws:creationTime>2026-11-25T09:30:00Z</uws:creationTime>
  <uws:startTime>2026-11-25T09:30:01Z</uws:startTime>
  <uws:endTime>2026-11-25T09:30:03Z</uws:endTime>
  <uws:parameters>
    <uws:parameter id="lang">ADQL</uws:parameter>
    <uws:parameter id="query">SELECT TOP 5 * FROM dp02_dc2_catalogs.Object</uws:parameter>
  </uws:parameters>
  <uws:results>
    <uws:result id="result" rows="5" xlink:href="http://127.0.0.1:8000/services/tap/async/newer/results/result"/>
  </uws:results>
</uws:job>`;
