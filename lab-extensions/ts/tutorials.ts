/** Tutorials: a menu and a launcher section; opening copies a fresh version into the home. */

import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, Notification, showDialog } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { notebookIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Menu } from '@lumino/widgets';

import { ApiError, requestJSON } from './api';
import { tutorialLabel } from './format';

export interface ITutorial {
  path: string;
  title: string;
  description: string;
  copy_path: string;
  state: 'new' | 'current' | 'outdated' | 'edited';
}

interface IOpened {
  path: string;
  action: 'copied' | 'unchanged' | 'updated' | 'replaced';
  backup: string | null;
}

export const OPEN_TUTORIAL = 'skydeck:open-tutorial';
export const LAUNCHER_CATEGORY = 'Skydeck Tutorials';
const OPEN_MINE = 'Open my copy';
const REPLACE = 'Replace with fresh copy';

/** Ask the server for a fresh copy (asking the user first if theirs was edited); open it. */
export async function openTutorial(app: JupyterFrontEnd, path: string): Promise<string | null> {
  let opened: IOpened;
  try {
    opened = await requestJSON<IOpened>('tutorials/open', {
      method: 'POST',
      body: JSON.stringify({ path })
    });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 409) {
      Notification.error(`Could not open the tutorial: ${(error as Error).message}`);
      return null;
    }
    const choice = await showDialog({
      title: 'You have edited this tutorial',
      body: error.message,
      buttons: [
        Dialog.cancelButton(),
        Dialog.okButton({ label: OPEN_MINE, displayType: 'default' }),
        Dialog.warnButton({ label: REPLACE })
      ]
    });
    if (!choice.button.accept) {
      return null;
    }
    if (choice.button.label === OPEN_MINE) {
      const mine = String(error.body.copy_path ?? '');
      await app.commands.execute('docmanager:open', { path: mine });
      return mine;
    }
    opened = await requestJSON<IOpened>('tutorials/open', {
      method: 'POST',
      body: JSON.stringify({ path, overwrite: true })
    });
    if (opened.backup) {
      Notification.info(`Your edited copy was kept as ${opened.backup}.`, { autoClose: 8000 });
    }
  }
  await app.commands.execute('docmanager:open', { path: opened.path });
  return opened.path;
}

/** The Tutorials menu: refreshes the state of the user's copies each time it opens. */
class TutorialsMenu extends Menu {
  constructor(
    options: Menu.IOptions,
    private readonly onOpen: () => void
  ) {
    super(options);
  }

  protected onBeforeAttach(msg: Message): void {
    super.onBeforeAttach(msg);
    this.onOpen();
  }
}

async function listTutorials(): Promise<ITutorial[]> {
  try {
    return (await requestJSON<{ tutorials: ITutorial[] }>('tutorials')).tutorials;
  } catch (error) {
    console.warn('Skydeck: could not list the tutorials', error);
    return [];
  }
}

export const tutorialsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'skydeck-labextension:tutorials',
  description: 'A Tutorials menu and launcher section; opening one copies it into your home.',
  autoStart: true,
  optional: [IMainMenu, ILauncher, ICommandPalette],
  activate: async (
    app: JupyterFrontEnd,
    mainMenu: IMainMenu | null,
    launcher: ILauncher | null,
    palette: ICommandPalette | null
  ) => {
    const states = new Map<string, string>();
    const refresh = async (): Promise<ITutorial[]> => {
      const tutorials = await listTutorials();
      tutorials.forEach(tutorial => states.set(tutorial.path, tutorial.state));
      menu.update();
      return tutorials;
    };

    app.commands.addCommand(OPEN_TUTORIAL, {
      label: args =>
        args.isLauncher
          ? String(args.title)
          : tutorialLabel(String(args.title ?? args.path), states.get(String(args.path))),
      caption: args => String(args.description ?? 'Open a fresh copy of this tutorial'),
      icon: args => (args.isPalette ? undefined : notebookIcon),
      execute: async args => {
        const opened = await openTutorial(app, String(args.path));
        void refresh();
        return opened;
      }
    });

    const menu = new TutorialsMenu({ commands: app.commands }, () => void refresh());
    menu.id = 'jp-skydeck-tutorials-menu';
    menu.title.label = 'Tutorials';
    mainMenu?.addMenu(menu, true, { rank: 90 });

    const tutorials = await refresh();
    if (!tutorials.length) {
      app.commands.addCommand('skydeck:no-tutorials', {
        label: 'No tutorials are installed (set SKYDECK_TUTORIALS_DIR)',
        isEnabled: () => false,
        execute: () => undefined
      });
      menu.addItem({ command: 'skydeck:no-tutorials' });
    }
    tutorials.forEach((tutorial, rank) => {
      const args = { path: tutorial.path, title: tutorial.title, description: tutorial.description };
      menu.addItem({ command: OPEN_TUTORIAL, args });
      launcher?.add({
        command: OPEN_TUTORIAL,
        args: { ...args, isLauncher: true },
        category: LAUNCHER_CATEGORY,
        rank
      });
      palette?.addItem({
        command: OPEN_TUTORIAL,
        args: { ...args, isPalette: true },
        category: LAUNCHER_CATEGORY
      });
    });
  }
};
