/** The catalog browser panel: TAP tables and columns, a filter box, insert-ADQL. */

import { Widget } from '@lumino/widgets';

import {
  adqlQuery,
  filterSchemas,
  ISchema,
  ITable,
  parseTableset,
  queryCellSource
} from './vosi';

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text) {
    node.textContent = text;
  }
  return node;
}

export interface ICatalogOptions {
  /** Fetch the VOSI tables document (text). */
  load: () => Promise<string>;
  /** Put a query's cell source into a notebook. */
  insert: (source: string) => Promise<void>;
}

/** The side panel. Loads lazily on first show; `refresh()` reloads. */
export class CatalogPanel extends Widget {
  readonly filterInput: HTMLInputElement;
  private readonly message: HTMLElement;
  private readonly list: HTMLElement;
  private schemas: ISchema[] = [];
  private loaded = false;

  constructor(private readonly options: ICatalogOptions) {
    super();
    this.id = 'jp-skydeck-catalog';
    this.addClass('jp-skydeck-panel');
    this.addClass('jp-skydeck-catalog');
    this.title.caption = 'Catalog browser (TAP tables)';
    const header = element('div', 'jp-skydeck-panel-header');
    header.appendChild(element('h2', 'jp-skydeck-panel-title', 'Catalog'));
    const reload = element('button', 'jp-mod-styled jp-skydeck-refresh', 'Refresh');
    reload.addEventListener('click', () => void this.refresh());
    header.appendChild(reload);
    this.filterInput = element('input', 'jp-mod-styled jp-skydeck-catalog-filter');
    this.filterInput.type = 'search';
    this.filterInput.placeholder = 'Filter tables, columns, units, UCDs';
    this.filterInput.addEventListener('input', () => this.render());
    this.message = element('div', 'jp-skydeck-message');
    this.list = element('div', 'jp-skydeck-catalog-list');
    this.node.append(header, this.filterInput, this.message, this.list);
  }

  protected onAfterShow(): void {
    if (!this.loaded) {
      void this.refresh();
    }
  }

  async refresh(): Promise<void> {
    this.loaded = true;
    this.showMessage('Loading the tables…');
    try {
      this.schemas = parseTableset(await this.options.load());
      this.showMessage(this.schemas.length ? '' : 'The TAP service lists no tables.');
    } catch (error) {
      this.schemas = [];
      this.showMessage(`The catalog is not available: ${(error as Error).message}`, true);
    }
    this.render();
  }

  private showMessage(text: string, isError = false): void {
    this.message.textContent = text;
    this.message.classList.toggle('jp-skydeck-error', isError);
  }

  render(): void {
    const filter = this.filterInput.value;
    const shown = filterSchemas(this.schemas, filter);
    this.list.replaceChildren();
    if (this.schemas.length && !shown.length) {
      this.list.appendChild(element('div', 'jp-skydeck-empty', `Nothing matches “${filter}”.`));
    }
    for (const schema of shown) {
      const section = element('section', 'jp-skydeck-schema');
      if (schema.name) {
        const heading = element('h3', 'jp-skydeck-schema-name', schema.name);
        heading.title = schema.description;
        section.appendChild(heading);
      }
      for (const table of schema.tables) {
        section.appendChild(this.renderTable(table, filter.trim() !== ''));
      }
      this.list.appendChild(section);
    }
  }

  private renderTable(table: ITable, open: boolean): HTMLElement {
    const details = element('details', 'jp-skydeck-table');
    details.dataset.table = table.name;
    details.open = open;
    const summary = element('summary', 'jp-skydeck-table-summary');
    summary.appendChild(element('span', 'jp-skydeck-table-name', table.name));
    const insert = element('button', 'jp-mod-styled jp-skydeck-insert', 'Insert query');
    insert.title = 'Insert a ready ADQL query for this table into the notebook';
    insert.addEventListener('click', event => {
      event.preventDefault();
      void this.options.insert(queryCellSource(adqlQuery(table)));
    });
    summary.appendChild(insert);
    details.appendChild(summary);
    if (table.description) {
      details.appendChild(element('p', 'jp-skydeck-table-description', table.description));
    }
    const columns = element('table', 'jp-skydeck-columns');
    const head = columns.createTHead().insertRow();
    for (const name of ['Column', 'Unit', 'UCD', 'Description']) {
      head.appendChild(element('th', '', name));
    }
    const body = columns.createTBody();
    for (const column of table.columns) {
      const row = body.insertRow();
      row.className = 'jp-skydeck-column';
      row.dataset.column = column.name;
      row.title = column.datatype;
      for (const value of [column.name, column.unit, column.ucd, column.description]) {
        row.insertCell().textContent = value;
      }
    }
    details.appendChild(columns);
    return details;
  }
}
