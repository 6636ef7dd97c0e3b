//! `#[looptrace::main]`: `#[tokio::main]` with looptrace's capture.

use proc_macro::TokenStream;
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, ItemFn, Lit, MetaNameValue, Token};

/// Runs `async fn main` on a looptrace-captured tokio runtime.
///
/// Arguments: `flavor = "multi_thread"` (default) or `"current_thread"`,
/// `worker_threads = N`. Destinations come from `LOOPTRACE_ADDR` /
/// `LOOPTRACE_RECORD`.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args.into(), item.into()) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> syn::Result<proc_macro2::TokenStream> {
    let mut f: ItemFn = syn::parse2(item)?;
    if f.sig.asyncness.take().is_none() {
        return Err(syn::Error::new_spanned(
            f.sig.fn_token,
            "#[looptrace::main] needs an `async fn`",
        ));
    }
    let args = Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(args)?;
    let mut flavor = String::from("multi_thread");
    let mut workers = None;
    for a in &args {
        let key = a
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        match (key.as_str(), &a.value) {
            (
                "flavor",
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }),
            ) => flavor = s.value(),
            (
                "worker_threads",
                Expr::Lit(ExprLit {
                    lit: Lit::Int(n), ..
                }),
            ) => workers = Some(n.base10_parse::<usize>()?),
            _ => {
                return Err(syn::Error::new_spanned(
                    a,
                    "expected `flavor = \"...\"` or `worker_threads = N`",
                ))
            }
        }
    }
    let builder = match flavor.as_str() {
        "multi_thread" => quote!(::looptrace::Builder::new_multi_thread()),
        "current_thread" => quote!(::looptrace::Builder::new_current_thread()),
        _ => {
            return Err(syn::Error::new_spanned(
                &args,
                "flavor is \"multi_thread\" or \"current_thread\"",
            ))
        }
    };
    let workers = workers.map(|n| quote!(.worker_threads(#n)));
    let body = &f.block;
    let attrs = &f.attrs;
    let vis = &f.vis;
    let sig = &f.sig;
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            let body = async move #body;
            #builder #workers
                .build()
                .expect("looptrace: failed to build the runtime")
                .block_on(body)
        }
    })
}
