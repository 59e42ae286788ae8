/** Skydeck's JupyterLab extension: every plugin of the package. */

import { JupyterFrontEndPlugin } from '@jupyterlab/application';

import { catalogPlugin } from './catalog';
import { historyPlugin } from './history';
import { logoutPlugin } from './logout';
import { statusPlugin } from './status';
import { tutorialsPlugin } from './tutorials';

const plugins: JupyterFrontEndPlugin<any>[] = [
  tutorialsPlugin,
  catalogPlugin,
  historyPlugin,
  statusPlugin,
  logoutPlugin
];

export default plugins;
