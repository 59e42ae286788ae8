/** Catalog browser plugin: the panel in the left area, fed by the TAP service's `/tables`. */

import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { INotebookTracker } from '@jupyterlab/notebook';
import { tableRowsIcon } from '@jupyterlab/ui-components';

import { requestText } from './api';
import { CatalogPanel } from './catalog';
import { insertCode } from './notebook';

export const catalogPlugin: JupyterFrontEndPlugin<void> = {
  id: 'skydeck-labextension:catalog',
  description: 'A side panel listing the TAP tables and columns, with insert-ADQL.',
  autoStart: true,
  optional: [INotebookTracker],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker | null) => {
    const panel = new CatalogPanel({
      load: () => requestText('tap/tables'),
      insert: source => insertCode(app, tracker, source)
    });
    panel.title.icon = tableRowsIcon;
    app.shell.add(panel, 'left', { rank: 700 });
    app.commands.addCommand('skydeck:show-catalog', {
      label: 'Show the Catalog Browser',
      execute: () => app.shell.activateById(panel.id)
    });
  }
};
