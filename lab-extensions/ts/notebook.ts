/** Putting generated code into the user's notebook. */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';

/**
 * Insert `source` as a new code cell below the active cell of the current
 * notebook, or in a new notebook when none is open.
 */
export async function insertCode(
  app: JupyterFrontEnd,
  tracker: INotebookTracker | null,
  source: string
): Promise<void> {
  let panel: NotebookPanel | null = tracker?.currentWidget ?? null;
  let fresh = false;
  if (!panel) {
    panel = (await app.commands.execute('notebook:create-new')) as NotebookPanel;
    fresh = true;
  }
  await panel.context.ready;
  const notebook = panel.content;
  const active = notebook.activeCell;
  if (!(fresh && active && active.model.sharedModel.getSource() === '')) {
    NotebookActions.insertBelow(notebook);
  }
  notebook.activeCell?.model.sharedModel.setSource(source);
  app.shell.activateById(panel.id);
}
