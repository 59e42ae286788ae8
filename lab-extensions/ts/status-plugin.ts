/** Status bar plugin: polls `skydeck/api/status` (not counted as activity). */

import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { IStatusBar } from '@jupyterlab/statusbar';

import { requestJSON } from './api';
import { IStatus, StatusItem } from './status';

export const statusPlugin: JupyterFrontEndPlugin<void> = {
  id: 'skydeck-labextension:status',
  description: 'Memory, Dask workers and storage against your limits; keep-alive.',
  autoStart: true,
  optional: [IStatusBar],
  activate: (app: JupyterFrontEnd, statusBar: IStatusBar | null) => {
    if (!statusBar) {
      return;
    }
    const item = new StatusItem(
      () => requestJSON<IStatus>('status?no_track_activity=1'),
      async () => {
        await requestJSON('keepalive', { method: 'POST', body: '{}' });
      }
    );
    statusBar.registerStatusItem('skydeck-labextension:status', { item, align: 'left', rank: 50 });
    item.start();
  }
};
