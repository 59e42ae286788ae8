/** Query history plugin: the user's async TAP jobs through the server extension. */

import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { historyIcon } from '@jupyterlab/ui-components';

import { requestJSON, requestText } from './api';
import { HISTORY_LENGTH, HistoryPanel } from './history';
import { insertCode } from './notebook';

export const historyPlugin: JupyterFrontEndPlugin<void> = {
  id: 'skydeck-labextension:history',
  description: 'Your recent asynchronous TAP queries, to load or run again.',
  autoStart: true,
  optional: [INotebookTracker],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker | null) => {
    const panel = new HistoryPanel({
      listJobs: () => requestText(`tap/async?LAST=${HISTORY_LENGTH}`),
      getJob: id => requestText(`tap/async/${encodeURIComponent(id)}`),
      rerun: async query => {
        const body = new URLSearchParams({ REQUEST: 'doQuery', LANG: 'ADQL', QUERY: query, PHASE: 'RUN' });
        await requestJSON('tap/async', {
          method: 'POST',
          body: body.toString(),
          headers: { 'Content-Type': 'application/x-www-form-urlencoded' }
        });
      },
      insert: source => insertCode(app, tracker, source),
      notify: (message, isError) =>
        isError ? Notification.error(message) : Notification.success(message, { autoClose: 4000 })
    });
    panel.title.icon = historyIcon;
    app.shell.add(panel, 'left', { rank: 710 });
  }
};
