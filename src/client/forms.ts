/**
 * What a browser would send for `form` submitted by `submitter`, as `fetch` arguments (HTML "form
 * submission algorithm": the clicked button's `formaction`, `formmethod` and `formenctype` override
 * the form's, and its name and value join the data). `data` is the form's data, read earlier.
 * @example
 * const [url, init] = formRequest(form, event.submitter)
 */
export function formRequest(
  form: HTMLFormElement,
  submitter?: HTMLElement | null,
  data = new FormData(form, submitter),
): [string, RequestInit] {
  const button = submitter as HTMLButtonElement | null | undefined
  // formaction reflects the page URL when absent, so ask for the attribute itself. formmethod and
  // formenctype reflect '' when absent: '' means "the form's", hence || rather than ??.
  return encodeForm(
    button?.hasAttribute('formaction') ? button.formAction : form.action,
    button?.formMethod || form.method,
    button?.formEnctype || form.enctype,
    data,
  )
}

/**
 * Encodes form data the way browsers do for a method and an enctype (both as the DOM reflects
 * them: lower case, known values).
 * @example
 * encodeForm('https://app.test/s', 'get', 'application/x-www-form-urlencoded', data) // ['https://app.test/s?q=x', {}]
 */
export function encodeForm(action: string, method: string, enctype: string, data: FormData): [string, RequestInit] {
  // Outside multipart, browsers send a file as its name only.
  const pairs = [...data].map(([name, value]) => [name, typeof value == 'string' ? value : value.name])
  const query = new URLSearchParams(pairs)
  if (method != 'post') {
    const url = new URL(action)
    url.search = '' + query
    return [url.href, {}]
  }
  const body =
    enctype == 'multipart/form-data' ? data : enctype == 'text/plain' ? pairs.map((pair) => pair.join('=') + '\r\n').join('') : query
  return [action, { method: 'POST', body }]
}

/**
 * Routes the submits of every `form[data-backward]` under `root` through `submit`, and reports each
 * outcome as a bubbling `backward:response` event on the form (`detail.response` or `detail.error`).
 * @example
 * const stop = interceptForms(document, bw.submit)
 */
export function interceptForms(
  root: Node,
  submit: (form: HTMLFormElement, submitter?: HTMLElement | null) => Promise<Response>,
): () => void {
  const onSubmit = (event: Event) => {
    const form = event.target as HTMLFormElement
    const submitter = (event as SubmitEvent).submitter as HTMLButtonElement | null
    // A page listener that already handled the submit wins; method=dialog never leaves the page.
    if (!event.defaultPrevented && form.matches('form[data-backward]') && (submitter?.formMethod || form.method) != 'dialog') {
      event.preventDefault()
      submit(form, submitter)
        .then((response) => ({ response }), (error: unknown) => ({ error }))
        .then((detail) => form.dispatchEvent(new CustomEvent('backward:response', { bubbles: true, detail })))
    }
  }
  root.addEventListener('submit', onSubmit)
  return () => root.removeEventListener('submit', onSubmit)
}
