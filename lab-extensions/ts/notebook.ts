/** Putting generated code into the user's notebook. */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';

/**
 * Insert `source` as a new code cell below the active cell of the current
 * notebook (or into the active cell when it is an empty code cell), or into a
 * new notebook when none is open.
 */
export async function insertCode(
  app: JupyterFrontEnd,
  tracker: INotebookTracker | null,
  source: string
): Promise<void> {
  let panel: NotebookPanel | null = tracker?.currentWidget ?? null;
  if (!panel) {
    panel = (await app.commands.execute('notebook:create-new')) as NotebookPanel;
  }
  await panel.context.ready;
  const notebook = panel.content;
  const active = notebook.activeCell;
  // An empty code cell (a new notebook's first cell, say) takes the code itself.
  const reuse =
    active && active.model.type === 'code' && active.model.sharedModel.getSource() === '';
  if (!reuse) {
    NotebookActions.insertBelow(notebook);
  }
  notebook.activeCell?.model.sharedModel.setSource(source);
  app.shell.activateById(panel.id);
}
