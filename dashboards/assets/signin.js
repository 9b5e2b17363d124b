// The sign-in page (`/signin`): sends the token to POST /api/v1/session, which sets the
// session cookie (HttpOnly: this script never sees it), then goes to the `next` page.
// No inline script: the page's Content-Security-Policy allows only this server's files.

const form = document.getElementById('signin');
const input = document.getElementById('token');
const error = document.getElementById('signin-error');
const submit = document.getElementById('signin-submit');

/** The `next` query parameter when it is a path on this server, else `/`. */
export function nextPage(search = location.search) {
  const next = new URLSearchParams(search).get('next');
  const local = next != null
    && next.startsWith('/')
    && !next.startsWith('//')
    && !next.includes('\\')
    && !/[\u0000-\u001f\u007f]/.test(next);
  return local ? next : '/';
}

function showError(text) {
  error.textContent = text;
  error.hidden = false;
  input.setAttribute('aria-invalid', 'true');
  input.focus();
  input.select();
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const token = input.value.trim();
  if (!token) {
    showError('Enter a token.');
    return;
  }
  submit.disabled = true;
  error.hidden = true;
  input.removeAttribute('aria-invalid');
  try {
    const resp = await fetch('/api/v1/session', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ token }),
      credentials: 'same-origin',
    });
    if (resp.ok) {
      input.value = '';
      location.replace(nextPage());
      return;
    }
    let message = null;
    try {
      message = (await resp.json())?.error?.message;
    } catch {
      message = null;
    }
    showError(resp.status === 401
      ? 'The token is not valid.'
      : message ?? `Signing in failed (HTTP ${resp.status}).`);
  } catch (e) {
    showError(`The server cannot be reached: ${e?.message ?? e}`);
  } finally {
    submit.disabled = false;
  }
});

input.focus();
