/* EdiDub panel — the CEP host for Premiere Pro before UXP: the same three calls as premiere.js,
 * done in ExtendScript (jsx/host.jsx) through the CEP bridge (window.__adobe_cep__.evalScript,
 * what CSInterface.evalScript wraps). Only used when the premierepro module is absent. */
(function (global) {
  "use strict";
  function evalScript(script) {
    return new Promise((resolve, reject) => {
      global.__adobe_cep__.evalScript(script, (text) => {
        let reply;
        try { reply = JSON.parse(text); } catch (e) { reject(new Error(`ExtendScript answered ${String(text).slice(0, 200)}`)); return; }
        if (reply && reply.error) reject(new Error(reply.error)); else resolve(reply);
      });
    });
  }
  const call = (fn, arg) => evalScript(`edidub_${fn}(${JSON.stringify(JSON.stringify(arg === undefined ? null : arg))})`);
  global.EdidubCepHost = {
    kind: "cep",
    available: () => !!(global.__adobe_cep__ && global.__adobe_cep__.evalScript),
    listAudioTracks: () => call("listAudioTracks"),
    readSelection: (dubTrackIndex) => call("readSelection", dubTrackIndex),
    placeResult: (result) => call("placeResult", result),
  };
})(typeof window !== "undefined" ? window : globalThis);
