// Preload for the NNI 3.0 manager (node): every server listens on 127.0.0.1 instead of all
// interfaces.  Use: NODE_OPTIONS=--require=/abs/path/bind_localhost.js nnictl create ...
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    if (args.length === 1 || typeof args[1] === 'function') {
      args.splice(1, 0, '127.0.0.1');
    } else if (typeof args[1] === 'string' && (args[1] === '0.0.0.0' || args[1] === '::' || args[1] === '')) {
      args[1] = '127.0.0.1';
    }
  } else if (args[0] && typeof args[0] === 'object' && args[0].port !== undefined && !args[0].path) {
    if (!args[0].host || args[0].host === '0.0.0.0' || args[0].host === '::') {
      args[0] = Object.assign({}, args[0], { host: '127.0.0.1' });
    }
  }
  return listen.apply(this, args);
};
