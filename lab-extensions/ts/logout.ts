/** The "Save All and Log Out" command. */

import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, showDialog } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { IMainMenu } from '@jupyterlab/mainmenu';

import { hubLogoutUrl } from './format';

export const SAVE_AND_LOGOUT = 'skydeck:save-all-and-logout';


export const logoutPlugin: JupyterFrontEndPlugin<void> = {
  id: 'skydeck-labextension:logout',
  description: 'Save every open document, then log out of the hub.',
  autoStart: true,
  optional: [IMainMenu, ICommandPalette],
  activate: (app: JupyterFrontEnd, mainMenu: IMainMenu | null, palette: ICommandPalette | null) => {
    app.commands.addCommand(SAVE_AND_LOGOUT, {
      label: 'Save All and Log Out',
      caption: 'Save every open document, then log out of Skydeck',
      execute: async () => {
        try {
          await app.commands.execute('docmanager:save-all');
        } catch (error) {
          await showDialog({
            title: 'Not everything could be saved',
            body: `${(error as Error).message}. You are still logged in; save by hand and try again.`,
            buttons: [Dialog.okButton()]
          });
          return;
        }
        const url = hubLogoutUrl(PageConfig.getOption('hubHost'), PageConfig.getOption('hubPrefix'));
        if (!url) {
          await showDialog({
            title: 'Everything is saved',
            body: 'This lab does not run under JupyterHub, so there is no hub to log out of.',
            buttons: [Dialog.okButton()]
          });
          return;
        }
        window.location.href = url;
      }
    });
    mainMenu?.fileMenu.addGroup([{ command: SAVE_AND_LOGOUT }], 99);
    palette?.addItem({ command: SAVE_AND_LOGOUT, category: 'Skydeck' });
  }
};
