/** Skydeck's JupyterLab extension: every plugin of the package. */

import { JupyterFrontEndPlugin } from '@jupyterlab/application';

import { catalogPlugin } from './catalog-plugin';
import { historyPlugin } from './history-plugin';
import { logoutPlugin } from './logout';
import { statusPlugin } from './status-plugin';
import { tutorialsPlugin } from './tutorials';

const plugins: JupyterFrontEndPlugin<any>[] = [
  tutorialsPlugin,
  catalogPlugin,
  historyPlugin,
  statusPlugin,
  logoutPlugin
];

export default plugins;
