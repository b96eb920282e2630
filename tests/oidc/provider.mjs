// The OpenID Connect provider of FactoryHub's single sign-on tests: panva's oidc-provider (an
// OpenID Certified implementation) with a login page of our own that checks passwords, a few
// test users with a groups claim, and consent given for the hub (a first-party client).
//
// Started by tests/browser/test_oidc_login.py as an unprivileged account, on 127.0.0.1 only.
// Its whole configuration comes as JSON on stdin, so passwords and the client secret are in
// no file and no command line:
//   {"port": 18300, "issuer": "http://127.0.0.1:18300",
//    "client": {"client_id", "client_secret", "redirect_uris", "post_logout_redirect_uris"},
//    "users": {"<login>": {"password": "...", "claims": {"email": ..., "groups": [...]}}}}
import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { text } from 'node:stream/consumers';

import Provider from 'oidc-provider';

const config = JSON.parse(await text(process.stdin));
const users = config.users;

const escape = (value) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const same = (a, b) => {
  const left = Buffer.from(String(a));
  const right = Buffer.from(String(b));
  return left.length === right.length && timingSafeEqual(left, right);
};

const provider = new Provider(config.issuer, {
  clients: [{
    ...config.client,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' })] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      // the stock page imports a web font: this machine has no internet
      async logoutSource(ctx, form) {
        ctx.body = `<!doctype html><html><head><title>Sign out</title></head><body>
<h1>Sign out of the test identity provider?</h1>${form}
<button id="idp-logout" type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
</body></html>`;
      },
    },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    if (!Object.hasOwn(users, sub)) return undefined;
    return { accountId: sub, claims: async () => ({ sub, ...users[sub].claims }) };
  },
  // The hub is the site's own service: people are not asked to consent to it.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile email groups');
    await grant.save();
    return grant;
  },
  ttl: { Session: 3600, Interaction: 600, Grant: 3600, AccessToken: 600, IdToken: 600 },
});

function loginPage(res, uid, message) {
  res.writeHead(message ? 401 : 200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(`<!doctype html><html><head><title>Test identity provider</title></head><body>
<h1>Test identity provider</h1>
${message ? `<p id="idp-error">${escape(message)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>User <input id="idp-login" name="login" autocomplete="off"></label>
<label>Password <input id="idp-password" name="password" type="password"></label>
<button id="idp-submit" type="submit">Sign in</button>
</form></body></html>`);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  if (details.prompt.name !== 'login') {
    // consent: the grant loadExistingGrant made covers it
    await provider.interactionFinished(req, res, { consent: {} }, { mergeWithLastSubmission: true });
    return;
  }
  if (req.method === 'GET' && !action) {
    loginPage(res, uid, '');
    return;
  }
  if (req.method !== 'POST' || action !== 'login') {
    res.writeHead(405).end();
    return;
  }
  const form = new URLSearchParams((await text(req)).slice(0, 4096));
  const login = form.get('login') || '';
  if (!Object.hasOwn(users, login) || !same(users[login].password, form.get('password') || '')) {
    loginPage(res, uid, 'Wrong user name or password.');
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
}

const callback = provider.callback();
createServer((req, res) => {
  const match = /^\/interaction\/([\w-]+)(?:\/(login))?$/.exec(new URL(req.url, config.issuer).pathname);
  if (!match) {
    callback(req, res);
    return;
  }
  interaction(req, res, match[1], match[2]).catch((error) => {
    console.error(error);
    if (!res.headersSent) res.writeHead(400, { 'Content-Type': 'text/plain' });
    res.end('This sign-in has expired or was not started here; start again from the hub.');
  });
}).listen(config.port, '127.0.0.1', () => console.log(`oidc-provider on ${config.issuer}`));
